"""CLAP's input in torch, batched: what `ClapFeatureExtractor` gives for audio of at most
`max_length_s` (10 s), computed without its numpy loop and without its randomness.

ClapFeatureExtractor only draws at random for audio *longer* than 10 s ("fusion" stacks 3
random crops beside a shrunk whole, "rand_trunc" takes a random crop). The pipeline never
hands it more: windows are 10 s and a track's last window is aligned to its end. For audio
of exactly 10 s neither path crops: it is one log-mel spectrogram of the whole window, and
for audio shorter than 10 s the audio is first tiled whole as often as it fits into 10 s
and then zero-padded ("repeatpad"), before the same spectrogram. What differs by mode:

- `rand_trunc` (unfused models such as larger_clap_music): Slaney-normalised filters on
  the Slaney mel scale, one channel, (batch, 1, 1001, 64).
- `fusion`: HTK-scale filters without normalisation, the one spectrogram stacked 4 times,
  (batch, 4, 1001, 64). The extractor also marks one clip of a batch with no long clip as
  `is_longer` at random; we mark none, since none is longer (only fused models read it).

The spectrogram: |STFT|² with a periodic Hann window of 1024, hop 480, centred with
reflect padding, mel filters from `frequency_min` to `frequency_max`, then
10 log10(max(x, 1e-10)) dB. The filters are transformers' `mel_filter_bank` with the
settings ClapFeatureExtractor uses (HTK or Slaney scale from 50 Hz-14 kHz here, not the
0 Hz-Nyquist Slaney filters of `mfs.extractors.mel`), built once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MEL_FLOOR = 1e-10
MODES = ("rand_trunc", "fusion")


@dataclass(frozen=True)
class ClapSettings:
    """What preprocessor_config.json may set (`ClapFeatureExtractor`'s defaults otherwise,
    except `truncation`, which defaults to what the model reads: `fusion` for a fused
    model, else `rand_trunc`)."""

    truncation: str
    sampling_rate: int = 48000
    feature_size: int = 64
    hop_length: int = 480
    max_length_s: int = 10
    fft_window_size: int = 1024
    frequency_min: float = 0
    frequency_max: float = 14000
    padding: str = "repeatpad"

    def __post_init__(self) -> None:
        if self.truncation not in MODES:
            raise ValueError(f"CLAP truncation {self.truncation!r} unknown; expected one of "
                             f"{', '.join(MODES)}")
        if self.padding not in ("repeatpad", "repeat", "pad"):
            raise ValueError(f"CLAP padding {self.padding!r} unknown")

    @classmethod
    def from_preprocessor(cls, config: dict, fused: bool) -> ClapSettings:
        known = {name: config[name] for name in cls.__dataclass_fields__ if name in config}
        known.setdefault("truncation", "fusion" if fused else "rand_trunc")
        return cls(**known)

    @property
    def max_samples(self) -> int:
        return int(self.max_length_s * self.sampling_rate)


def mel_filters(settings: ClapSettings) -> torch.Tensor:
    """(fft bins, mels) as ClapFeatureExtractor builds them for `settings.truncation`."""
    from transformers.audio_utils import mel_filter_bank

    scale = "htk" if settings.truncation == "fusion" else "slaney"
    filters = mel_filter_bank(num_frequency_bins=settings.fft_window_size // 2 + 1,
                              num_mel_filters=settings.feature_size,
                              min_frequency=settings.frequency_min,
                              max_frequency=settings.frequency_max,
                              sampling_rate=settings.sampling_rate,
                              norm=None if scale == "htk" else "slaney", mel_scale=scale)
    return torch.from_numpy(filters).float()


def pad_like_clap(waveforms: torch.Tensor, size: int, padding: str) -> torch.Tensor:
    """Audio shorter than `size` repeated and/or zero-padded as ClapFeatureExtractor does;
    longer audio is the caller's to cut (the pipeline's windows never are)."""
    length = waveforms.shape[-1]
    if length > size:
        raise ValueError(f"CLAP input of {length} samples is longer than its {size}")
    if length == size:
        return waveforms
    if padding == "repeat":
        waveforms = waveforms.repeat(1, size // length + 1)[:, :size]
    elif padding == "repeatpad":
        waveforms = waveforms.repeat(1, size // length)
    return torch.nn.functional.pad(waveforms, (0, size - waveforms.shape[-1]))


class ClapFrontEnd(torch.nn.Module):
    """Waveforms (batch, ≤ max samples) at 48 kHz → CLAP input (batch, 1 or 4, frames, mels)."""

    def __init__(self, settings: ClapSettings) -> None:
        super().__init__()
        self.settings = settings
        # float32 (MPS holds no float64), widened where used; the window is made there,
        # since a float32 Hann window's rounding alone leaks ~0.02 dB into quiet bins
        self.register_buffer("filters", mel_filters(settings), persistent=False)

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) in dB; frames = 1 + samples // hop.

        In float64 (float32 only where the device has no float64, MPS): the dB scale reaches
        down to the -100 dB floor, and a float32 FFT's error, relative to a frame's loudest
        bin, moves its quiet bins by up to 0.1 dB from the extractor's (measured on GTZAN
        jazz.00001; 1e-5 dB in float64). The model's cost dwarfs the spectrogram's.
        """
        dtype = torch.float32 if waveforms.device.type == "mps" else torch.float64
        spectrum = torch.stft(waveforms.to(dtype), self.settings.fft_window_size,
                              self.settings.hop_length, window=torch.hann_window(
                                  self.settings.fft_window_size, dtype=dtype,
                                  device=waveforms.device),
                              center=True, pad_mode="reflect", return_complex=True)
        power = spectrum.abs().square().transpose(1, 2)
        mel = power @ self.filters.to(dtype)
        return (10.0 * torch.log10(mel.clamp_min(MEL_FLOOR))).float()

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(waveforms.device.type, enabled=False):
            padded = pad_like_clap(waveforms.float(), self.settings.max_samples,
                                   self.settings.padding)
            mel = self.log_mel(padded)[:, None]
        return mel.expand(-1, 4, -1, -1) if self.settings.truncation == "fusion" else mel

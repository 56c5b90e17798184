"""AST's input in torch: the Kaldi-style log-mel filterbank that `ASTFeatureExtractor`
computes in numpy (or through torchaudio's Kaldi compliance, which it matches), batched.

Per 25 ms frame (400 samples at 16 kHz, hop 10 ms, edges snipped as Kaldi does): the DC
offset removed, pre-emphasis 0.97, a symmetric Hann window (`window_type="hanning"` in
both of the extractor's paths; not Kaldi's default povey), |FFT 512|², 128 triangular
filters on Kaldi's mel scale from 20 Hz to Nyquist, natural log floored at float32's
epsilon. Dither is 0. The frames are zero-padded (or cut) to the model's 1024 and then
normalised with the AudioSet statistics of preprocessor_config.json, `(x - mean) / (2 std)`,
padding included, exactly as the extractor does.

The filters are transformers' own `mel_filter_bank(mel_scale="kaldi",
triangularize_in_mel_space=True)`, built once: Kaldi's mel scale and its triangles drawn
in mel space are not the Slaney filters of `mfs.extractors.mel`, and taking the very
function the checkpoint's preprocessor uses leaves nothing to drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FRAME = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
FFT = 512  # Kaldi rounds the frame up to a power of two
PREEMPHASIS = 0.97
LOG_FLOOR = 1.192092955078125e-07  # float32 epsilon, Kaldi's floor


@dataclass(frozen=True)
class FbankSettings:
    """What preprocessor_config.json may set (`ASTFeatureExtractor`'s defaults otherwise)."""

    sampling_rate: int = 16000
    num_mel_bins: int = 128
    max_length: int = 1024
    mean: float = -4.2677393
    std: float = 4.5689974
    do_normalize: bool = True

    @classmethod
    def from_preprocessor(cls, config: dict) -> FbankSettings:
        known = {name: config[name] for name in cls.__dataclass_fields__ if name in config}
        return cls(**known)


def mel_filters(settings: FbankSettings) -> torch.Tensor:
    """(257, mels) Kaldi-scale triangles, as ASTFeatureExtractor builds them."""
    import warnings

    from transformers.audio_utils import mel_filter_bank

    with warnings.catch_warnings():  # Kaldi's lowest triangles miss every FFT bin: all zero
        warnings.simplefilter("ignore", UserWarning)
        filters = mel_filter_bank(num_frequency_bins=FFT // 2 + 1,
                                  num_mel_filters=settings.num_mel_bins, min_frequency=20,
                                  max_frequency=settings.sampling_rate // 2,
                                  sampling_rate=settings.sampling_rate, norm=None,
                                  mel_scale="kaldi", triangularize_in_mel_space=True)
    return torch.from_numpy(filters).float()


class AstFrontEnd(torch.nn.Module):
    """Waveforms (batch, samples) at 16 kHz → AST input (batch, max_length, mels)."""

    def __init__(self, settings: FbankSettings) -> None:
        super().__init__()
        self.settings = settings
        self.register_buffer("filters", mel_filters(settings), persistent=False)
        self.register_buffer("window", torch.hann_window(FRAME, periodic=False),
                             persistent=False)

    def fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) log filterbank energies, frames = 1 + (n - 400) // 160."""
        frames = waveforms.float().unfold(-1, FRAME, HOP)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        frames = torch.cat([frames[..., :1] * (1 - PREEMPHASIS),
                            frames[..., 1:] - PREEMPHASIS * frames[..., :-1]], dim=-1)
        power = torch.fft.rfft(frames * self.window, n=FFT).abs().square()
        return torch.log((power @ self.filters).clamp_min(LOG_FLOOR))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.shape[-1] < FRAME:  # a frame needs 25 ms: shorter audio is one frame
            waveforms = torch.nn.functional.pad(waveforms, (0, FRAME - waveforms.shape[-1]))
        with torch.autocast(waveforms.device.type, enabled=False):
            fbank = self.fbank(waveforms)
            size = self.settings.max_length
            fbank = torch.nn.functional.pad(fbank, (0, 0, 0, max(0, size - fbank.shape[1])))
            fbank = fbank[:, :size]
            if self.settings.do_normalize:
                fbank = (fbank - self.settings.mean) / (2 * self.settings.std)
        return fbank

"""FMA's 518 hand-crafted features (features.csv of mdeff/fma), computed in torch and C.

FMA's `features.py` summarises 74 librosa frame features (n_fft 2048, hop 512, native rate)
by 7 statistics over the whole track. This extractor computes the same frames (FFT and
filterbanks in torch, `spectral.py`; per-frame statistics, the CQT and zero crossings in
C, `frame_stats.py`, `cqt.py`, `native.py`) and the same statistics, and returns them in
the column order of features.csv: (feature, statistic, number) sorted, e.g.
"chroma_cens/kurtosis/01".

Where today's librosa changed a default since the 0.5.0 that made features.csv, we follow
0.5.0, because matching features.csv is the point: chroma from the 12-bin CQT uses 12 bins
per octave (librosa >= 0.8 assumes 36), `rmse` is 0.5's unscaled mean-square magnitude,
frames are centred by reflect padding, CENS smoothing uses a periodic Hann window, and a
constant frame feature has skew 0 and kurtosis -3 (scipy 0.19; scipy today gives NaN).

features.py passes the sample rate to `cqt` and `melspectrogram` but not to chroma_stft,
spectral_centroid, spectral_bandwidth, spectral_contrast or spectral_rolloff, so librosa's
default of 22050 Hz labels the bins of those five whatever the file's rate: at 44.1 kHz
(most of FMA) centroid, bandwidth and rolloff come out halved and the contrast bands sit an
octave high. features.csv holds exactly that, so we do the same (`FEATURES_PY_RATE`).

The statistics need every frame (the medians), but not the track: a track over
`WHOLE_FRAMES` frames is read twice by `embed_track`, in hop-aligned segments
(`segments.py`): first for what every frame waits for (the two tunings, the dB maxima of
mel, contrast peaks and valleys), then for the frames, each segment with the context its
frames reach (the STFT's half window, the CQT's lowest octave through its halvings), so
they equal the whole track's. It holds a segment's spectra and CQT (tens of MB at any
rate), the track's 74 frame features (296 bytes a frame: 46 MB an hour at 22.05 kHz, 200
MB at 96 kHz) and, during the first pass, its tuning candidates (8 bytes a peak).

Values that FMA cannot have are NaN: below about 8.5 kHz the 7-octave CQT from C1 does not
fit under Nyquist, so chroma_cqt, chroma_cens and tonnetz are NaN (librosa raises, and
FMA's row would be all NaN). Digital silence gives finite values: zeros, MFCC 0 at -100 dB
(-1131.4 for coefficient 01), zero spread, skew 0 and kurtosis -3.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mfs.extractors.base import TrackBlocks
from mfs.extractors.fma518 import cqt, frame_stats, native, spectral
from mfs.extractors.fma518.cqt import PlanTensors, cqt_chroma, cqt_plan
from mfs.extractors.fma518.extractor import (
    COLUMN_ORDER,
    CQT_OCTAVES,
    FAMILIES,
    N_FRAME_FEATURES,
    Fma518Config,
)
from mfs.extractors.fma518.segments import segments
from mfs.extractors.mel import fft_frequencies, mel_filterbank

N_CHROMA = 12
CHROMA_COLUMNS = 16  # chroma filters padded with zero columns (`Fma518Features._chroma_stft`)
CENS_SMOOTHING = 41  # librosa chroma_cens win_len_smooth
CENS_STEPS = torch.tensor([0.05, 0.1, 0.2, 0.4])  # librosa chroma_cens quantisation steps
N_MELS = 128
N_MFCC = 20
FEATURES_PY_RATE = 22050  # librosa's default sr, which features.py leaves in place (above)
FRAME_CHUNK = 1024  # STFT frames made and read at a time (`Fma518Features._spectra`)
# A track of at most WHOLE_FRAMES frames (95 s at 22.05 kHz, 47 s at 44.1 kHz: every clip
# of FMA and GTZAN) is computed whole, in one pass; a longer one in two passes of segments
# of SEGMENT_FRAMES frames (`Fma518Features.stream_frame_features`), whose spectra and CQT take
# ~30 MB whatever the rate (bench/RESULTS.md, "fma518 memory").
WHOLE_FRAMES = 4096
SEGMENT_FRAMES = 2048
DB_REFERENCED = ("mel", "peak", "valley")  # spectra whose dB floor is the track's maximum
# Families that the spectra's statistics give final (`Fma518Features._spectra`).
PASS_ONE_FAMILIES = ("spectral_rolloff", "spectral_centroid", "spectral_bandwidth", "rmse")


def _family_rows() -> dict[str, slice]:
    """Each family's rows in the (frame feature, frames) layout of the frame features."""
    rows, first = {}, 0
    for name, size in FAMILIES:
        rows[name] = slice(first, first + size)
        first += size
    return rows


_ROWS = _family_rows()


@dataclass
class Spectra:
    """The STFT side of a range of frames: per-frame values (batch, frames, k) by name,
    |X|² by chunk of frames (`FRAME_CHUNK`), and the tuning peaks."""

    values: dict[str, torch.Tensor]
    powers: list[torch.Tensor]
    peaks: spectral.Peaks


@dataclass(frozen=True)
class Scan:
    """What every frame of a track waits for: the two tunings (per track, `TUNING_EDGES`
    indices) and the dB references (`spectral.db_peak`) of `DB_REFERENCED`."""

    cqt_tuning: list[int]
    chroma_tuning: list[int]
    tops: dict[str, torch.Tensor]


class Constants:
    """Everything that depends only on (sample rate, n_fft, device), as tensors."""

    def __init__(self, sample_rate: int, n_fft: int, device: torch.device) -> None:
        def tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(array, dtype=dtype, device=device)

        self.window = torch.hann_window(n_fft, periodic=True, device=device)
        self.freq_labels = fft_frequencies(FEATURES_PY_RATE, n_fft).astype(np.float32)
        self.contrast_bands = spectral.contrast_bands(float(FEATURES_PY_RATE), n_fft)
        mel = mel_filterbank(float(sample_rate), n_fft, N_MELS)
        self.mel_blocks = [(a, b, tensor(w)) for a, b, w in spectral.mel_blocks(mel)]
        self.dct = tensor(spectral.dct_matrix(N_MFCC, N_MELS))
        self.cens_window = tensor(_cens_window())
        self.tonnetz = tensor(_tonnetz_basis())


class Fma518Features:
    """fma518's computation for one config: frame features and their statistics, with
    caches per sample rate and device (constants, CQT plans, chroma filters). Built by
    `Fma518Features.load`, so that naming, hashing and planning fma518 never import torch."""

    def __init__(self, config: Fma518Config) -> None:
        self.config = config
        self._constants: dict[tuple, Constants] = {}
        self._plans: dict[tuple, PlanTensors | None] = {}
        self._chroma: dict[tuple, torch.Tensor] = {}

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Tracks (batch, samples) of equal length -> {"features": (batch, 518)}."""
        if windows.dim() != 2 or windows.shape[1] < 2:
            raise ValueError(f"fma518: expected (tracks, samples) audio, "
                             f"got shape {tuple(windows.shape)}")
        frames = self.frame_features(windows.float(), sample_rate)
        return _output(summarise(torch.cat(list(frames.values()), dim=-1)), windows.device)

    def embed_track(self, blocks: TrackBlocks, sample_rate: int,
                    device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """One track read as blocks (`base.py`): whole when it has at most
        `WHOLE_FRAMES` frames, as `embed` does; longer, in two passes of segments, so
        that memory holds a segment's spectra and the track's frame features, not the
        track (`stream_frame_features`)."""
        device = device or torch.device("cpu")
        whole = _whole_track(blocks(), WHOLE_FRAMES * self.config.hop_length)
        if whole is not None:
            return self.embed(torch.from_numpy(whole)[None].to(device), sample_rate)
        return _output(summarise_rows(self.stream_frame_features(blocks, sample_rate, device)),
                       device)

    def frame_features(self, x: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Every family's per-frame values (batch, frames, dims) of whole tracks, in
        `FAMILIES` order. The tunings and dB references come from the same spectra."""
        const = self._constants_for(sample_rate, x.device)
        spectra = self._spectra(x, const, sample_rate)
        scan = self._scan([spectra], sample_rate)
        out = self._local_features(x, spectra, scan, const, sample_rate, slice(None))
        out.update(self._chroma_families(out.pop("chroma"), const))
        return {name: out[name] for name, _ in FAMILIES}

    def stream_frame_features(self, blocks: TrackBlocks, sample_rate: int,
                              device: torch.device) -> np.ndarray:
        """One track's frame features (1, 74, frames), `FAMILIES` order, read in segments
        of `SEGMENT_FRAMES` frames (`segments.py`), the values equal to `frame_features`'.

        Pass 1 makes the spectra's statistics (`_spectra`) and keeps those that wait for
        nothing, the contrast bands' extremes and what the rest waits for (tunings, the
        mel maximum: `_scan`). Pass 2 makes |X|² again for the mel and chroma products
        (`_power_features`), and the CQT and zero crossings, each segment with enough
        context for the CQT's lowest octave. CENS smooths across frames, so the CQT's
        chroma waits in chroma_cens's rows for the end, as the contrast bands' extremes
        wait for their maxima.
        """
        const = self._constants_for(sample_rate, device)
        hop, stft_margin = self.config.hop_length, _round_up(self.config.n_fft // 2 + 1,
                                                             self.config.hop_length)
        kept: list[dict[str, np.ndarray]] = []

        def first_pass() -> Iterator[Spectra]:
            for part in segments(blocks(), hop, SEGMENT_FRAMES, stft_margin):
                spectra = self._spectra(_tensor(part.samples, device), const, sample_rate,
                                        part.keep)
                kept.append({name: spectra.values[name].cpu().numpy()
                             for name in (*PASS_ONE_FAMILIES, "peak", "valley")})
                spectra.powers.clear()
                yield spectra

        scan = self._scan(first_pass(), sample_rate)
        store, valley = self._stored_first_pass(kept)
        margin = max(stft_margin, self._reach(sample_rate, scan.cqt_tuning[0]))
        for part in segments(blocks(), hop, SEGMENT_FRAMES, margin):
            x = _tensor(part.samples, device)
            frames = spectral.stft_frames(x, self.config.n_fft, hop)[:, part.keep]
            out = self._power_features(
                [frame_stats.power_spectrum(frames[:, start : start + FRAME_CHUNK],
                                            const.window)
                 for start in range(0, frames.shape[1], FRAME_CHUNK)], scan, const)
            out.update(self._signal_features(x, sample_rate, scan, part.keep))
            out["chroma_cens"] = out.pop("chroma")
            _write(store, out, part.first_frame)
        peak = torch.from_numpy(store[:, _ROWS["spectral_contrast"]].transpose(0, 2, 1))
        contrast = spectral.spectral_contrast(peak, torch.from_numpy(valley))
        _write(store, {"spectral_contrast": contrast}, 0)
        self._stored_chroma_families(store, const, device)
        return store

    @staticmethod
    def _stored_first_pass(kept: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The frame features (1, 74, frames) with pass 1's families in place and the
        contrast bands' peaks in spectral_contrast's rows; their valleys (1, frames, 7)
        beside. Each segment's values are freed as they are moved in."""
        n_frames = sum(part["rmse"].shape[1] for part in kept)
        store = np.empty((1, N_FRAME_FEATURES, n_frames), np.float32)
        valley = np.empty((1, n_frames, kept[0]["valley"].shape[-1]), np.float32)
        first = 0
        while kept:
            part = kept.pop(0)
            count = part["rmse"].shape[1]
            valley[:, first : first + count] = part.pop("valley")
            part["spectral_contrast"] = part.pop("peak")
            _write(store, {name: torch.from_numpy(value) for name, value in part.items()},
                   first)
            first += count
        return store, valley

    def _stored_chroma_families(self, store: np.ndarray, const: Constants,
                                device: torch.device) -> None:
        """Replace the CQT's chroma waiting in `store`'s chroma_cens rows by the three
        families made from it, `SEGMENT_FRAMES` frames at a time: each block reads the
        CENS window's half-width of raw chroma beyond its ends (the block before it has
        already been overwritten, so its last raw frames are carried over)."""
        rows, half = _ROWS["chroma_cens"], const.cens_window.shape[0] // 2
        n_frames, step = store.shape[-1], max(SEGMENT_FRAMES, half)
        carried = store[:, rows, :0].copy()
        for first in range(0, n_frames, step):
            stop = min(n_frames, first + step)
            raw = np.concatenate([carried, store[:, rows, first : stop + half]], axis=2)
            carried = store[:, rows, max(first, stop - half) : stop].copy()
            chroma = torch.from_numpy(np.ascontiguousarray(raw.transpose(0, 2, 1)))
            families = self._chroma_families(chroma.to(device), const)
            skip = raw.shape[2] - (min(n_frames, stop + half) - first)
            _write(store, {name: value[:, skip : skip + stop - first]
                           for name, value in families.items()}, first)

    # --- the two sides of a range of frames ------------------------------------------
    def _spectra(self, x: torch.Tensor, const: Constants, sample_rate: int,
                 keep: slice = slice(None)) -> Spectra:
        """The STFT side of frames `keep` of x's centred framing.

        The spectrogram is made `FRAME_CHUNK` frames at a time and its mel product taken
        while the chunk is in the cache; |X| is never kept (the C kernel reads each frame
        once, `frame_stats.spectrum_stats`). |X|² is kept by chunk for chroma_stft, whose
        filters wait for the tuning estimated over the whole track.
        """
        frames = spectral.stft_frames(x, self.config.n_fft, self.config.hop_length)[:, keep]
        peak_bins = self._peak_bins(sample_rate)
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        peaks, powers = [], []
        for start in range(0, frames.shape[1], FRAME_CHUNK):
            stats = frame_stats.spectrum_stats(frames[:, start : start + FRAME_CHUNK],
                                                 const.window, const.freq_labels,
                                                 const.contrast_bands, peak_bins)
            peaks.append(stats.peaks)
            powers.append(stats.power)
            for name, value in (("spectral_rolloff", stats.rolloff),
                                ("spectral_centroid", stats.centroid),
                                ("spectral_bandwidth", stats.bandwidth),
                                ("rmse", stats.rmse), ("peak", stats.peak),
                                ("valley", stats.valley),
                                ("mel", spectral.mel_power(stats.power, const.mel_blocks))):
                parts[name].append(value)
        values = {name: torch.cat(chunks, dim=1) for name, chunks in parts.items()}
        return Spectra(values, powers, spectral.merge_ranges(peaks))

    def _scan(self, parts: Iterable[Spectra], sample_rate: int) -> Scan:
        """What a track's frames wait for, from the spectra of all its frames, a part at a
        time: of each part only the tuning candidates and the maxima are kept."""
        votes: list[tuple[spectral.TuningVotes, spectral.TuningVotes]] = []
        tops: dict[str, torch.Tensor] = {}
        for part in parts:
            votes.append(self._tuning_votes(part.peaks, sample_rate))
            for name in DB_REFERENCED:
                top = spectral.db_peak(part.values[name])
                tops[name] = torch.maximum(tops[name], top) if name in tops else top
        cqt_votes, chroma_votes = zip(*votes, strict=True)
        return Scan(spectral.vote(spectral.merge_ranges(list(cqt_votes)), N_CHROMA),
                    spectral.vote(spectral.merge_ranges(list(chroma_votes)), N_CHROMA), tops)

    def _local_features(self, x: torch.Tensor, spectra: Spectra, scan: Scan,
                        const: Constants, sample_rate: int, keep: slice
                        ) -> dict[str, torch.Tensor]:
        """Frames `keep` of x's framing: every family but the three made from the CQT's
        chroma, which comes as "chroma" (`_chroma_families`). Frees `spectra`'s |X|²."""
        values = spectra.values
        out = {name: values[name] for name in PASS_ONE_FAMILIES}
        out["spectral_contrast"] = spectral.spectral_contrast(
            values["peak"], values["valley"], (scan.tops["peak"], scan.tops["valley"]))
        out.update(self._power_features(spectra.powers, scan, const, values["mel"]))
        spectra.powers.clear()
        out.update(self._signal_features(x, sample_rate, scan, keep))
        return out

    def _power_features(self, powers: list[torch.Tensor], scan: Scan, const: Constants,
                        mel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """mfcc and chroma_stft from |X|² by chunks of frames (`mel`: their mel products,
        when already made)."""
        if mel is None:
            mel = torch.cat([spectral.mel_power(power, const.mel_blocks) for power in powers],
                            dim=1)
        return {"mfcc": spectral.mfcc(mel, const.dct, scan.tops["mel"]),
                "chroma_stft": torch.cat([self._chroma_stft(power, scan.chroma_tuning)
                                          for power in powers], dim=1)}

    def _signal_features(self, x: torch.Tensor, sample_rate: int, scan: Scan, keep: slice
                         ) -> dict[str, torch.Tensor]:
        """Frames `keep` of x's framing made from the signal itself: the CQT's chroma (as
        "chroma") and the zero-crossing rate."""
        n_frames = spectral.n_frames(x.shape[1], self.config.hop_length)
        return {"chroma": self._cqt_chroma(x, sample_rate, scan.cqt_tuning, n_frames)[:, keep],
                "zcr": spectral.zero_crossing_rate(x, self.config.n_fft,
                                                   self.config.hop_length)[:, keep]}

    # --- families ----------------------------------------------------------------------
    def _peak_bins(self, sample_rate: int) -> tuple[int, int]:
        """The bins where either tuning estimate looks for peaks (`_tuning_votes`)."""
        n_fft = self.config.n_fft
        cqt_bins = spectral.pitch_bins(sample_rate, n_fft)
        stft_bins = spectral.pitch_bins(FEATURES_PY_RATE, n_fft)
        return min(cqt_bins[0], stft_bins[0]), max(cqt_bins[1], stft_bins[1])

    def _tuning_votes(self, peaks: spectral.Peaks, sample_rate: int
                      ) -> tuple[spectral.TuningVotes, spectral.TuningVotes]:
        """The candidates of the two tuning estimates features.py makes, per track.

        cqt(tuning=None) estimates on |X| at the file's rate; chroma_stft estimates on |X|²
        at librosa's default rate. Both use the peaks found once over both bin ranges.
        """
        n_fft = self.config.n_fft
        return (spectral.tuning_votes(peaks, spectral.pitch_bins(sample_rate, n_fft),
                                      sample_rate, n_fft, squared=False),
                spectral.tuning_votes(peaks, spectral.pitch_bins(FEATURES_PY_RATE, n_fft),
                                      FEATURES_PY_RATE, n_fft, squared=True))

    def _chroma_stft(self, power: torch.Tensor, tunings: list[int]) -> torch.Tensor:
        """chroma_stft(S=|X|²) at librosa's default rate, with its own tuning per track.

        The filters get zero columns up to `CHROMA_COLUMNS`: MKL multiplies the spectrogram
        by 16 columns in two thirds of the time it takes for 12.
        """
        filters = []
        for tuning in tunings:
            key = (tuning, str(power.device))
            if key not in self._chroma:
                bank = spectral.chroma_filterbank(float(FEATURES_PY_RATE), self.config.n_fft,
                                                  tuning, N_CHROMA)
                padded = np.zeros((bank.shape[1], CHROMA_COLUMNS), dtype=np.float32)
                padded[:, :N_CHROMA] = bank.T
                self._chroma[key] = torch.as_tensor(padded, device=power.device)
            filters.append(self._chroma[key])
        return spectral.chroma_stft(power, torch.stack(filters), N_CHROMA)

    def _cqt_chroma(self, x: torch.Tensor, sample_rate: int, tunings: list[int],
                    n_frames: int) -> torch.Tensor:
        """|CQT| (84 bins from C1, hop 512) summed per pitch class, (batch, n_frames, 12).

        Tracks are grouped by tuning (one kernel set each); a track whose CQT cannot fit
        under Nyquist gets NaN.
        """
        chroma = x.new_zeros((x.shape[0], n_frames, N_CHROMA))
        for tuning in sorted(set(tunings)):
            rows = [i for i, t in enumerate(tunings) if t == tuning]
            plan = self._plan(sample_rate, tuning)
            if plan is None:
                chroma[rows] = float("nan")
            else:
                tracks = x[rows] if len(rows) < len(x) else x
                chroma[rows] = cqt_chroma(tracks, plan, n_frames)
        return chroma

    def _chroma_families(self, chroma: torch.Tensor, const: Constants
                         ) -> dict[str, torch.Tensor]:
        """chroma_cqt, chroma_cens and tonnetz from the CQT's chroma of whole tracks (CENS
        smooths across frames). A track without a CQT (NaN chroma) gets NaN."""
        missing = chroma[:, 0, 0].isnan()
        chroma = chroma.nan_to_num(0.0) if bool(missing.any()) else chroma
        cens = chroma_cens(chroma, const.cens_window)
        out = {"chroma_cqt": spectral.normalize(chroma, float("inf")),
               "chroma_cens": cens, "tonnetz": tonnetz(cens, const.tonnetz)}
        if bool(missing.any()):
            for value in out.values():
                value[missing] = float("nan")
        return out

    def _reach(self, sample_rate: int, tuning: int) -> int:
        """Context samples a segment needs each side for the CQT (`cqt.reach`), in hops."""
        plan = self._plan(sample_rate, tuning)
        if plan is None:
            return 0
        return _round_up(cqt.reach(plan.plan, len(plan.halving)), self.config.hop_length)

    def _plan(self, sample_rate: int, tuning: int) -> PlanTensors | None:
        key = (sample_rate, tuning)
        if key not in self._plans:
            plan = cqt_plan(float(sample_rate), self.config.hop_length, tuning,
                            CQT_OCTAVES * N_CHROMA, N_CHROMA)
            self._plans[key] = plan and PlanTensors(plan)
        return self._plans[key]

    def _constants_for(self, sample_rate: int, device: torch.device) -> Constants:
        key = (sample_rate, str(device))
        if key not in self._constants:
            self._constants[key] = Constants(sample_rate, self.config.n_fft, device)
        return self._constants[key]


def _output(stats: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """`summarise`'s (batch, 7, 74) statistics as the stored row: features.csv's order."""
    features = stats.reshape(len(stats), -1)[:, COLUMN_ORDER].astype(np.float32)
    return {"features": torch.from_numpy(features).to(device)}


def _whole_track(blocks: Iterator[np.ndarray], limit: int) -> np.ndarray | None:
    """The track of `blocks` as one array when it has fewer than `limit` samples, else None
    (having read only a little past `limit`)."""
    held, count = [], 0
    for block in blocks:
        held.append(block)
        count += len(block)
        if count >= limit:
            return None
    return np.concatenate(held) if held else np.zeros(0, np.float32)


def _tensor(samples: np.ndarray, device: torch.device) -> torch.Tensor:
    """One segment as a batch of one track on `device`."""
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None].to(device)


def _write(store: np.ndarray, families: dict[str, torch.Tensor], first_frame: int) -> None:
    """Frame values (batch, frames, dims) by family into `store` (batch, 74, all frames)."""
    for name, value in families.items():
        frames = value.detach().cpu().float().numpy()
        store[:, _ROWS[name], first_frame : first_frame + frames.shape[1]] = \
            frames.transpose(0, 2, 1)


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _cens_window() -> np.ndarray:
    """librosa 0.5's CENS smoothing window: periodic Hann of 43 points, summing to 1."""
    n = CENS_SMOOTHING + 2
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    return window / window.sum()


def _tonnetz_basis() -> np.ndarray:
    """(12, 6) projection of chroma onto fifths, minor and major thirds (librosa.tonnetz)."""
    dim_map = np.linspace(0, 12, num=N_CHROMA, endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    angles = np.multiply.outer(scale, dim_map)
    angles[::2] -= 0.5
    radius = np.array([1, 1, 1, 1, 0.5, 0.5])[:, None]
    return (radius * np.cos(np.pi * angles)).T


def chroma_cens(chroma: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """CENS: L1 chroma quantised at 0.05/0.1/0.2/0.4, smoothed over time, L2-normalised.

    The quantised value is a quarter of the number of steps below the chroma value, which
    `bucketize` counts in one op. The smoothing is a zero-padded convolution with `window`
    (`_cens_window`): a product of sliding windows along each pitch class's contiguous
    frames (conv1d costs more to set up here, and windows across frames of (frames, 12)
    rows are a strided copy twice as slow).
    """
    chroma = spectral.normalize(chroma, 1.0)
    quantised = torch.bucketize(chroma, CENS_STEPS.to(chroma.device)).to(chroma.dtype) * 0.25
    half = window.shape[0] // 2
    padded = torch.nn.functional.pad(quantised.transpose(1, 2), (half, half))
    smoothed = torch.matmul(padded.unfold(-1, window.shape[0], 1), window.flip(0))
    return spectral.normalize(smoothed.transpose(1, 2), 2.0)


def tonnetz(chroma: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Tonal centroids of the L1-normalised chroma; `basis` is `_tonnetz_basis()`."""
    return torch.matmul(spectral.normalize(chroma, 1.0), basis)


def summarise(frames: torch.Tensor) -> np.ndarray:
    """features.py's 7 statistics over time: (batch, frames, dims) -> (batch, 7, dims)
    (`summarise_rows` of a copy, so the caller's frames stay as they were)."""
    return summarise_rows(frames.detach().transpose(1, 2).cpu().float().numpy()
                          .copy(order="C"))


def summarise_rows(ordered: np.ndarray) -> np.ndarray:
    """The 7 statistics of (batch, dims, frames) float32, C-contiguous, sorting it in place.

    On the CPU, float64 (MPS has none). One numpy sort per feature gives median, min and
    max (numpy's SIMD sort beats torch's CPU sort and kthvalue, and a scalar selection in
    C), and it puts NaN last, where one look finds it; the moments are made in C
    (`native.py`) from the sorted rows. scipy's biased skew and Fisher kurtosis, 0 and -3
    for a constant feature (scipy 0.19); numpy's median.
    """
    ordered.sort(axis=-1)
    batch, dims, n = ordered.shape
    central = np.empty((batch, dims, 4))
    for track, out in zip(ordered, central, strict=True):
        native.LIB.moments(native.address(track), dims, n, native.address(out))
    mean, m2, m3, m4 = np.moveaxis(central, -1, 0)
    flat = np.sqrt(m2) <= np.finfo(np.float32).eps * np.abs(mean)
    safe = np.where(flat, 1.0, m2)
    skew = np.where(flat, 0.0, m3 / safe**1.5)
    kurtosis = np.where(flat, -3.0, m4 / safe**2 - 3.0)
    middle = ordered[..., [(n - 1) // 2, n // 2]].astype(np.float64)
    stats = np.stack([mean, np.sqrt(m2), skew, kurtosis, middle.mean(-1), ordered[..., 0],
                      ordered[..., -1]], axis=1)
    return np.where(np.isnan(ordered[..., -1])[:, None], np.nan, stats)

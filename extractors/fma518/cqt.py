"""A batched constant-Q transform in torch, numerically librosa's `cqt`.

librosa computes a CQT octave by octave: the top octave's 12 filters are applied to the
signal through a short FFT, then the signal is halved in rate (and the hop with it) and the
same relative filters give the next octave down. We keep that recursion, and its filters
(Hann-windowed complex exponentials, FFT-domain sparsified to 99% of their L1 mass), but:

* each octave's sparse FFT-domain filters are folded back into one dense time-domain
  kernel per bin, so an octave is the framed signal (frames at the octave's hop) times a
  (n_fft, 2 × bins) real kernel, computed in C on the signal in place;
* halving the rate is a 39-tap half-band FIR (flat to 1e-5 below 0.3 × Nyquist, 110 dB
  down above 0.7 × Nyquist), in C, instead of soxr: the filters of every
  lower octave sit below 0.3 × the input Nyquist, and anything folding back lands above.

Kernels are built once in numpy per (sample rate, hop, tuning) and cached. Magnitudes are
sqrt(re² + im²) of products scaled by `LIFT`, as in `frame_stats.spectrum_stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from mfs.extractors.fma518 import native
from mfs.extractors.fma518.spectral import LIFT, TUNING_EDGES

C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12.0)  # librosa.note_to_hz("C1")
HANN_BANDWIDTH = 1.50018310546875  # librosa.filters.window_bandwidth("hann")
SPARSITY = 0.01  # librosa.cqt default: drop the smallest 1% of each filter's L1 mass


@dataclass(frozen=True)
class Octave:
    """One octave's time-domain kernel (n_fft, 2 × bins): real parts, then imaginary."""

    kernel: np.ndarray
    n_fft: int
    hop_length: int


@dataclass(frozen=True)
class CQTPlan:
    """How to compute one CQT: halvings before the first octave, then octaves top-down."""

    early_halvings: int
    octaves: tuple[Octave, ...]
    n_bins: int


def halfband_kernel(half_width: int = 19, beta: float = 11.75) -> np.ndarray:
    """Kaiser-windowed half-band low-pass (cut-off at half the input Nyquist), unit DC gain."""
    taps = np.arange(-half_width, half_width + 1)
    kernel = 0.5 * np.sinc(taps / 2) * np.kaiser(2 * half_width + 1, beta)
    return kernel / kernel.sum()


def halve_rate(y: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Low-pass by the half-band `kernel` and keep every second sample:
    (batch, n) -> (batch, ceil(n / 2)).

    Zero-phase and zero-padded, so output sample m sits at input sample 2m, as in soxr.
    In C (`native.py`), which multiplies only the odd taps (a half-band filter's other
    even taps are zero): a third of the time of the matrix products over overlapping
    spans that did it before (bench/RESULTS.md). On the CPU whatever the device.
    """
    half = len(kernel) // 2
    taps = np.ascontiguousarray(kernel[half + 1 :: 2], dtype=np.float32)
    signal = native.host_array(y)
    out = np.empty((len(signal), (signal.shape[1] + 1) // 2), dtype=np.float32)
    for track, row in zip(signal, out, strict=True):
        if native.LIB.halve(native.address(track), len(track), native.address(row),
                            native.address(taps), len(taps), float(kernel[half])) < 0:
            raise ValueError(f"cqt: half-band kernel of {len(kernel)} taps; the C kernel "
                             f"takes at most {4 * native.MAX_HALVING_TAPS - 1}")
    return torch.from_numpy(out).to(y.device)


def cqt_frequencies(n_bins: int, fmin: float, bins_per_octave: int) -> np.ndarray:
    """Equal-tempered centre frequencies, tiled octave by octave as librosa does."""
    ratios = 2.0 ** (np.arange(0, bins_per_octave, dtype=float) / bins_per_octave)
    n_octaves = int(np.ceil(n_bins / bins_per_octave))
    return np.sort(np.multiply.outer(2.0 ** np.arange(n_octaves), ratios).ravel()[:n_bins]) * fmin


def relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    """librosa's per-bin relative bandwidth alpha (filter Q is 1 / alpha)."""
    logf = np.log2(freqs)
    bpo = np.empty_like(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _sparsify(rows: np.ndarray) -> np.ndarray:
    """Zero each row's smallest entries holding `SPARSITY` of its L1 mass (librosa)."""
    mags = np.abs(rows)
    mag_sort = np.sort(mags, axis=1)
    cumulative = np.cumsum(mag_sort / mags.sum(axis=1, keepdims=True), axis=1)
    threshold = mag_sort[np.arange(len(rows)), np.argmin(cumulative < SPARSITY, axis=1)]
    return np.where(mags >= threshold[:, None], rows, 0)


def _octave_kernel(freqs: np.ndarray, alpha: np.ndarray, sample_rate: float,
                   scale: np.ndarray) -> tuple[np.ndarray, int]:
    """Time-domain kernels equal to librosa's sparse FFT-domain basis for one octave.

    librosa takes sum_k B[k] · rfft(frame)[k] over k <= n_fft / 2; that equals the frame
    correlated with h[n] = sum_k B[k] exp(-2πikn / n_fft), which is `fft` of B zero-extended.
    `scale` carries librosa's resampling and length normalisations per bin.
    """
    lengths = sample_rate / (alpha * freqs)
    n_fft = int(2.0 ** np.ceil(np.log2(lengths.max())))
    basis = np.zeros((len(freqs), n_fft), dtype=np.complex128)
    for row, (length, freq) in enumerate(zip(lengths, freqs, strict=True)):
        times = np.arange(-length // 2, length // 2, dtype=float)
        wave = np.exp(1j * times * 2 * np.pi * freq / sample_rate) * _periodic_hann(len(times))
        start = (n_fft - len(times)) // 2
        basis[row, start : start + len(times)] = wave / np.abs(wave).sum()
    basis *= lengths[:, None] / n_fft
    spectrum = np.zeros_like(basis)
    spectrum[:, : n_fft // 2 + 1] = _sparsify(np.fft.fft(basis, axis=1)[:, : n_fft // 2 + 1])
    kernel = np.fft.fft(spectrum, axis=1) * scale[:, None]
    return np.concatenate([kernel.real.T, kernel.imag.T], axis=1).astype(np.float32), n_fft


def _two_factors(x: int) -> int:
    count = 0
    while x > 0 and x % 2 == 0:
        count, x = count + 1, x // 2
    return count


@lru_cache(maxsize=512)
def cqt_plan(sample_rate: float, hop_length: int, tuning_index: int, n_bins: int = 84,
             bins_per_octave: int = 12, fmin: float = C1_HZ) -> CQTPlan | None:
    """The kernels of librosa.cqt(sr, hop_length, fmin, n_bins, bins_per_octave, tuning).

    `tuning_index` indexes `TUNING_EDGES`. None when the top filter would reach past
    Nyquist: librosa refuses that rate (about 8.5 kHz and below for 7 octaves from C1).
    Whole octaves only, so that every octave's kernel has the same shape (`cqt_octaves`).
    """
    if n_bins % bins_per_octave:
        raise ValueError(f"cqt: n_bins={n_bins} must be whole octaves of {bins_per_octave}")
    freqs = cqt_frequencies(n_bins, fmin * 2.0 ** (TUNING_EDGES[tuning_index] / bins_per_octave),
                            bins_per_octave)
    alpha = relative_bandwidth(freqs)
    cutoff = np.max(freqs * (1 + 0.5 * HANN_BANDWIDTH * alpha))
    nyquist = sample_rate / 2.0
    if cutoff > nyquist:
        return None
    n_octaves = int(np.ceil(n_bins / bins_per_octave))
    early = min(max(0, int(np.ceil(np.log2(nyquist / cutoff)) - 1) - 1),
                max(0, _two_factors(hop_length) - n_octaves + 1))
    rate, hop = sample_rate / 2**early, hop_length // 2**early
    # librosa: early resampling × sqrt(2^early), each halving × sqrt(2), the basis of
    # octave i × sqrt(2^i), and the output / sqrt(filter length at `rate`).
    norm = 2.0 ** (early / 2) / np.sqrt(rate / (alpha * freqs))
    octaves = []
    for i in range(n_octaves):
        top = n_bins - i * bins_per_octave
        part = slice(top - bins_per_octave, top)
        kernel, n_fft = _octave_kernel(freqs[part], alpha[part], rate / 2**i,
                                       norm[part] * 2.0**i)
        octaves.append(Octave(kernel, n_fft, hop // 2**i))
    return CQTPlan(early, tuple(octaves), n_bins)


def reach(plan: CQTPlan, halving_taps: int) -> int:
    """Input samples either side of a frame's centre that its chroma depends on: the
    lowest octave's kernel, at its rate, widened by the half-band filters before it (each
    halving adds its half-width at the rate it runs at). Segments of a track with this
    much context give its frames exactly (`segments.py`)."""
    half = halving_taps // 2
    levels = [plan.early_halvings + i for i in range(len(plan.octaves))]
    return max(octave.n_fft // 2 * 2**level + half * (2**level - 1)
               for octave, level in zip(plan.octaves, levels, strict=True))


class PlanTensors:
    """A plan's kernels as the C kernel reads them, made once per plan: the octaves'
    kernels stacked (octaves, n_fft, 2 × bins), float32, scaled by `LIFT`, so that
    re² + im² of quiet frames stays clear of float32 underflow; and the half-band filter."""

    def __init__(self, plan: CQTPlan) -> None:
        self.plan = plan
        self.kernels = np.ascontiguousarray(np.stack([o.kernel for o in plan.octaves]) * LIFT,
                                            dtype=np.float32)
        self.halving = halfband_kernel()


def cqt_chroma(y: torch.Tensor, tensors: PlanTensors, n_frames: int) -> torch.Tensor:
    """|CQT| summed over the octaves, per pitch class: librosa's cq_to_chroma of a CQT of
    whole octaves from C (`cqt_plan`). (batch, samples) -> (batch, n_frames, bins per
    octave), on y's device.

    Every octave has at least `n_frames` frames (from 0, at the octave's hop, centred,
    reflect-padded). Each octave's products, magnitudes and sum are one C call
    (`native.py`), on the CPU whatever the device.
    """
    plan = tensors.plan
    for _ in range(plan.early_halvings):
        y = halve_rate(y, tensors.halving)
    n_octaves, n_fft, width = tensors.kernels.shape
    chroma = np.zeros((len(y), n_frames, width // 2), dtype=np.float32)
    for i, octave in enumerate(plan.octaves):
        if i > 0:
            y = halve_rate(y, tensors.halving)
        for track, out in zip(native.host_array(y), chroma, strict=True):
            if native.LIB.cqt_octave(native.address(track), len(track), n_frames,
                                     octave.hop_length,
                                     native.address(tensors.kernels[i]), n_fft, width // 2,
                                     1.0 / LIFT, native.address(out)) < 0:
                raise ValueError(f"cqt: the C kernel takes 12 bins per octave and kernels of "
                                 f"at most 4096 taps, not {width // 2} bins of {n_fft}")
    return torch.from_numpy(chroma).to(y.device)

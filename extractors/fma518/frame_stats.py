"""The STFT side of fma518: FFT in torch, then every per-frame statistic in one C pass.

`_native.c` reads each frame's FFT output once and makes |X|², |X|, rmse, centroid,
bandwidth, rolloff, the contrast bands' extremes and the tuning peaks from the frame while
it is in L1; eager torch/numpy made a dozen passes over the spectrogram and sorted every
contrast band (bench/RESULTS.md). The statistics are computed on the CPU whatever the
device: the FFT runs where the frames are and its output is brought over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfs.extractors.fma518.native import LIB, address
from mfs.extractors.fma518.spectral import LIFT, Peaks

FFT_CHUNK = 128  # frames per FFT: its input and output stay in the cache
PEAK_THRESHOLD = 0.1  # librosa.piptrack's threshold, relative to the frame's maximum


@dataclass(frozen=True)
class SpectrumStats:
    """One range of STFT frames, on the frames' device: |X|² (batch, frames, bins) and
    per-frame statistics (batch, frames, k); the tuning peaks in numpy."""

    power: torch.Tensor
    rmse: torch.Tensor
    centroid: torch.Tensor
    bandwidth: torch.Tensor
    rolloff: torch.Tensor
    peak: torch.Tensor
    valley: torch.Tensor
    peaks: Peaks


def spectrum_stats(frames: torch.Tensor, window: torch.Tensor, freqs: np.ndarray,
                   bands: tuple[tuple[int, int, int], ...], peak_bins: tuple[int, int]
                   ) -> SpectrumStats:
    """Statistics of `spectral.stft_frames` (all or a range of them), Hann-windowed.

    `freqs` labels the bins (float32) for centroid, bandwidth and rolloff; `bands` are
    `spectral.contrast_bands`; tuning peaks are looked for in bins [lo, hi) of
    `peak_bins`. The window is scaled by `LIFT` (exact in binary floating point) so that
    re² + im² of near-silent frames (|X| < 1e-19) stays clear of float32 underflow,
    where librosa's |X| is still exact; the kernel scales back.
    """
    batch, n_frames, n_fft = frames.shape
    bins = n_fft // 2 + 1
    lo, hi = peak_bins
    if not 1 <= lo <= hi <= bins - 1:
        raise ValueError(f"fma518: peak bins [{lo}, {hi}) must lie inside 1..{bins - 1}")
    table = np.ascontiguousarray(bands, dtype=np.int64)
    labels = np.ascontiguousarray(freqs, dtype=np.float32)
    rows = batch * n_frames
    power = np.empty((batch, n_frames, bins), dtype=np.float32)
    stats = np.empty((batch, n_frames, 4), dtype=np.float32)
    peak = np.empty((batch, n_frames, len(table)), dtype=np.float32)
    valley = np.empty_like(peak)
    capacity = rows * ((hi - lo) // 2 + 1)
    peak_row = np.empty(capacity, dtype=np.int32)
    peak_bin = np.empty(capacity, dtype=np.int32)
    peak_values = np.empty((capacity, 4), dtype=np.float32)
    lifted = window * LIFT
    # Row r of an output starts r row strides past its first byte: pointers by arithmetic,
    # as numpy's per-call `ctypes` views cost more than the calls.
    per_frame = [(address(a), a.strides[0])
                 for a in (power.reshape(rows, -1), stats.reshape(rows, -1),
                           peak.reshape(rows, -1), valley.reshape(rows, -1))]
    per_peak = [(address(a), a.strides[0]) for a in (peak_row, peak_bin, peak_values)]
    found = 0
    for track in range(batch):  # track by track, so the peaks come out in row order
        for start in range(0, n_frames, FFT_CHUNK):
            part = slice(start, min(start + FFT_CHUNK, n_frames))
            spectra = torch.view_as_real(torch.fft.rfft(frames[track, part] * lifted))
            spectra = spectra.cpu().numpy()  # kept alive through the call
            first = track * n_frames + start
            got = LIB.frame_stats(
                address(spectra), part.stop - start, first, bins, address(labels), LIFT,
                address(table), len(table), lo, hi, PEAK_THRESHOLD,
                *(base + first * stride for base, stride in per_frame),
                *(base + found * stride for base, stride in per_peak))
            if got < 0:
                raise ValueError(f"fma518: n_fft={n_fft} or a contrast band is beyond the "
                                 f"frame kernel's limits (4096 bins, 128 values per band)")
            found += got

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(frames.device)

    return SpectrumStats(
        power=tensor(power), rmse=tensor(stats[..., 0:1]), centroid=tensor(stats[..., 1:2]),
        bandwidth=tensor(stats[..., 2:3]), rolloff=tensor(stats[..., 3:4]),
        peak=tensor(peak), valley=tensor(valley),
        peaks=_peaks(peak_row[:found], peak_bin[:found], peak_values[:found], batch, n_frames))


def power_spectrum(frames: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """|X|² of `spectral.stft_frames` (all or a range of them), Hann-windowed: the `power`
    of `spectrum_stats` alone, by the same operations (window × `LIFT`, re² + im² in C,
    scaled back by a power of two), for a pass over a track that needs no other statistic."""
    batch, n_frames, n_fft = frames.shape
    power = np.empty((batch, n_frames, n_fft // 2 + 1), dtype=np.float32)
    lifted, to_power = window * LIFT, 1.0 / (LIFT * LIFT)
    for track in range(batch):
        for start in range(0, n_frames, FFT_CHUNK):
            part = slice(start, start + FFT_CHUNK)
            spectra = torch.view_as_real(torch.fft.rfft(frames[track, part] * lifted))
            spectra = spectra.cpu().numpy()  # kept alive through the call
            LIB.power(address(spectra), spectra.size // 2, to_power,
                      address(power[track, part]))
    return torch.from_numpy(power).to(frames.device)


def _peaks(row: np.ndarray, bin_: np.ndarray, values: np.ndarray, tracks: int,
           n_frames: int) -> Peaks:
    """The kernel's peaks (row = track × frames + frame, ascending) as `spectral.Peaks`."""
    starts = np.searchsorted(row // n_frames, np.arange(tracks + 1))
    return Peaks(starts, bin_.astype(np.intp), values[:, 0].copy(), values[:, 1].copy(),
                 values[:, 2].copy(), values[:, 3].copy())

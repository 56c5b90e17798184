"""The C frame kernel (`frame_stats.spectrum_stats`) against the plain definitions.

Each statistic is recomputed here the obvious way in numpy (float64 sums, full sorts, the
running sum over every bin) from the same float32 |X| the kernel sees, on a synthetic
signal built to reach the kernel's special paths: music-like frames (a few harmonics
over noise), a pure tone (narrow spread), digital silence (every value tied, the
contrast bands' fallback), and a fade 1e-22 below full scale (|X|² under float32's range
without the LIFT scaling).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfs.extractors.fma518 import frame_stats, spectral
from mfs.extractors.mel import fft_frequencies

RATE = 22050
N_FFT = 2048
HOP = 512
BANDS = spectral.contrast_bands(float(RATE), N_FFT)
PEAK_BINS = spectral.pitch_bins(RATE, N_FFT)


def make_signal() -> np.ndarray:
    """Four seconds: harmonics over noise, a pure tone, silence, a very quiet fade."""
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    music = sum(np.sin(2 * np.pi * 220 * h * t + h) / h for h in range(1, 8))
    music = music + 0.05 * rng.standard_normal(RATE)
    tone = np.sin(2 * np.pi * 1000 * t)
    quiet = 1e-22 * rng.standard_normal(RATE)
    return np.concatenate([music, tone, np.zeros(RATE), quiet]).astype(np.float32)


def reference_magnitude(frames: torch.Tensor) -> np.ndarray:
    """|X| in float32 as the kernel forms it: FFT of Hann × LIFT frames, sqrt(re² + im²)
    scaled back (exact powers of two)."""
    window = torch.hann_window(N_FFT, periodic=True) * spectral.LIFT
    pairs = torch.view_as_real(torch.fft.rfft(frames * window)).numpy()
    lifted = pairs[..., 0] * pairs[..., 0] + pairs[..., 1] * pairs[..., 1]
    return (np.sqrt(lifted) * np.float32(1 / spectral.LIFT)).astype(np.float32)


@pytest.fixture(scope="module")
def computed() -> tuple[frame_stats.SpectrumStats, np.ndarray, np.ndarray]:
    signal = torch.from_numpy(np.stack([make_signal(), make_signal()[::-1].copy()]))
    frames = spectral.stft_frames(signal, N_FFT, HOP)
    freqs = fft_frequencies(RATE, N_FFT).astype(np.float32)
    stats = frame_stats.spectrum_stats(frames, torch.hann_window(N_FFT, periodic=True),
                                         freqs, BANDS, PEAK_BINS)
    return stats, reference_magnitude(frames), freqs


def test_power_rmse_centroid_bandwidth(computed) -> None:
    stats, mag, freqs = computed
    mag64 = mag.astype(np.float64)
    np.testing.assert_allclose(stats.power.numpy(), mag64**2, rtol=1e-5, atol=1e-40)
    # The fade's |X|² (~1e-42) is subnormal in float32, here as in librosa: hence atol.
    np.testing.assert_allclose(stats.rmse.numpy()[..., 0], np.sqrt((mag64**2).mean(-1)),
                               rtol=1e-5, atol=1e-23)
    total = mag64.sum(-1)
    scale = np.where(total < np.finfo(np.float32).tiny, 1.0, total)
    centroid = (mag64 * freqs).sum(-1) / scale
    spread = (mag64 * (freqs - centroid[..., None]) ** 2).sum(-1) / scale
    np.testing.assert_allclose(stats.centroid.numpy()[..., 0], centroid, rtol=1e-5)
    np.testing.assert_allclose(stats.bandwidth.numpy()[..., 0], np.sqrt(spread), rtol=1e-4)
    quiet = slice(-RATE // HOP + 4, -4)  # frames of the 1e-22 fade: finite, not zero
    assert (stats.centroid.numpy()[0, quiet] > 0).all()
    assert (stats.bandwidth.numpy()[0, quiet] > 0).all()


def test_rolloff(computed) -> None:
    stats, mag, freqs = computed
    running = np.cumsum(mag.astype(np.float64), axis=-1)
    first = np.argmax(running >= 0.85 * running[..., -1:], axis=-1)
    got = stats.rolloff.numpy()[..., 0]
    # The kernel's float32 block sums may settle a frame at the neighbouring bin.
    assert np.mean(got == freqs[first]) > 0.98
    assert np.abs(got - freqs[first]).max() <= freqs[1] + 1e-3


def test_band_extremes_are_the_sorted_means(computed) -> None:
    stats, mag, _ = computed
    for b, (start, stop, count) in enumerate(BANDS):
        ordered = np.sort(mag[..., start:stop], axis=-1).astype(np.float64)
        np.testing.assert_allclose(stats.peak.numpy()[..., b],
                                   ordered[..., -count:].mean(-1), rtol=1e-6)
        np.testing.assert_allclose(stats.valley.numpy()[..., b],
                                   ordered[..., :count].mean(-1), rtol=1e-6)
    silent = slice(2 * RATE // HOP + 4, 3 * RATE // HOP - 4)
    assert (stats.peak.numpy()[0, silent] == 0).all()


def test_peaks_are_the_gated_local_maxima(computed) -> None:
    stats, mag, _ = computed
    lo, hi = PEAK_BINS
    top = mag.max(-1, keepdims=True)
    centre = mag[..., lo:hi]
    found = ((centre > np.float32(frame_stats.PEAK_THRESHOLD) * top)
             & (centre > mag[..., lo - 1 : hi - 1]) & (centre >= mag[..., lo + 1 : hi + 1]))
    track, frame, offset = np.nonzero(found)
    peaks = stats.peaks
    assert peaks.starts.tolist() == [0, int((track == 0).sum()), len(track)]
    np.testing.assert_array_equal(peaks.bin, offset + lo)
    np.testing.assert_array_equal(peaks.here, mag[track, frame, offset + lo])
    np.testing.assert_array_equal(peaks.below, mag[track, frame, offset + lo - 1])
    np.testing.assert_array_equal(peaks.above, mag[track, frame, offset + lo + 1])
    np.testing.assert_array_equal(peaks.frame_top, top[track, frame, 0])


def test_frames_beyond_the_kernel_are_refused() -> None:
    frames = torch.zeros(1, 2, 8192 + 2)  # 4098 bins
    freqs = np.zeros(4098, dtype=np.float32)
    with pytest.raises(ValueError, match="n_fft=8194"):
        frame_stats.spectrum_stats(frames, torch.ones(8194), freqs, BANDS, PEAK_BINS)

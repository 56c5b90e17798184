"""The CQT's rate halving (C kernel) against the half-band filter applied the plain way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfs.extractors.fma518 import cqt


@pytest.mark.parametrize("length", [1, 2, 39, 4096, 4097, 10_001])
def test_halve_rate_is_the_filter_then_every_second_sample(length: int) -> None:
    rng = np.random.default_rng(length)
    signal = rng.standard_normal((2, length)).astype(np.float32)
    kernel = cqt.halfband_kernel()
    half = len(kernel) // 2
    # Zero-padded, zero-phase: output m is the filter centred on input sample 2m.
    expected = np.stack([np.convolve(row.astype(np.float64), kernel)[half : half + length : 2]
                         for row in signal])
    got = cqt.halve_rate(torch.from_numpy(signal), kernel).numpy()
    assert got.shape == (2, (length + 1) // 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_halving_removes_the_upper_half_band() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 9000 * t)
    halved = cqt.halve_rate(torch.from_numpy(np.stack([low, high]).astype(np.float32)),
                            cqt.halfband_kernel()).numpy()[:, 100:-100]
    assert abs(np.sqrt(np.mean(halved[0] ** 2)) - np.sqrt(0.5)) < 1e-4  # passband: flat
    assert np.sqrt(np.mean(halved[1] ** 2)) < 1e-5  # above 0.7 × Nyquist: > 100 dB down


def test_an_overlong_kernel_is_refused() -> None:
    with pytest.raises(ValueError, match="half-band kernel of 259 taps"):
        cqt.halve_rate(torch.zeros(1, 10), cqt.halfband_kernel(half_width=129))

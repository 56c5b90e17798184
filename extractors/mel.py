"""The Slaney mel scale and its triangular filterbank, shared by every model family.

fma518 (librosa's `melspectrogram` for FMA's MFCCs) and musicnn (its TF front end) use
the same filters; they live here so neither family imports the other's package. numpy
only: building a filterbank must not import torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def fft_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency of each rfft bin (librosa's `fft_frequencies`)."""
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)


_MEL_F_SP = 200.0 / 3  # Hz per mel below 1 kHz (Slaney)
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(freqs: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freqs = np.asarray(freqs, dtype=np.float64)
    log_part = _MEL_MIN_LOG_MEL + np.log(np.maximum(freqs, _MEL_MIN_LOG_HZ)
                                         / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return np.where(freqs >= _MEL_MIN_LOG_HZ, log_part, freqs / _MEL_F_SP)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    log_part = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels - _MEL_MIN_LOG_MEL))
    return np.where(mels >= _MEL_MIN_LOG_MEL, log_part, _MEL_F_SP * mels)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """Slaney-normalised triangular mel filters (n_mels, bins), 0 Hz to Nyquist."""
    fft_freqs = fft_frequencies(sample_rate, n_fft)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)

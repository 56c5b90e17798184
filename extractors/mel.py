"""The mel filterbanks every model family shares, numpy only (building one must not import
torch).

`mel_filterbank` is librosa's default (Slaney scale, area-normalised): fma518 (librosa's
`melspectrogram` for FMA's MFCCs), musicnn (its TF front end) and PANNs (torchlibrosa,
with fmin/fmax) use it. `htk_mel_matrix` is VGGish's own (`mel_features.py`), which no
librosa option reproduces: its triangles are straight in mel, not in Hz, unnormalised,
over `linspace` bin frequencies, with the DC bin zeroed.
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
def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters (n_mels, bins), `fmin` to `fmax` (Nyquist
    by default), as librosa's `filters.mel`."""
    fft_freqs = fft_frequencies(sample_rate, n_fft)
    top = sample_rate / 2 if fmax is None else fmax
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(top), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


_HTK_BREAK_HZ = 700.0
_HTK_Q = 1127.0


def _htk_hz_to_mel(freqs: np.ndarray | float) -> np.ndarray:
    return _HTK_Q * np.log(1.0 + np.asarray(freqs, dtype=np.float64) / _HTK_BREAK_HZ)


@lru_cache(maxsize=4)
def htk_mel_matrix(sample_rate: float, n_bins: int, n_mels: int, fmin: float,
                   fmax: float) -> np.ndarray:
    """VGGish's mel matrix (bins, n_mels), to post-multiply STFT magnitudes: HTK mel scale,
    triangles linear in mel between `n_mels + 2` evenly spaced edges, no normalisation, and
    no weight on the DC bin (HTK leaves it out)."""
    bins_mel = _htk_hz_to_mel(np.linspace(0.0, sample_rate / 2, n_bins))
    edges = np.linspace(_htk_hz_to_mel(fmin), _htk_hz_to_mel(fmax), n_mels + 2)
    lower = (bins_mel[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - bins_mel[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0, :] = 0.0
    return weights

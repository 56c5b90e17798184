"""FMA's features.py `compute_features`, with librosa, as the reference for `fma518`.

This is features.py's feature code (mdeff/fma, librosa 0.5.0 era) run on the installed
librosa. Each place where librosa's defaults changed since 0.5.0 is pinned back to what
0.5.0 did, so that the result means what features.csv means:

* `librosa.feature.rmse` is gone; 0.5.0's `rmse(S=S)` was `sqrt(mean(S**2, axis=0))`.
  Today's `rms(S=S)` is Parseval-scaled (about 45x smaller), so we spell out 0.5.0's.
* `chroma_cqt`/`chroma_cens` assumed `bins_per_octave=n_chroma` (12); since librosa 0.8
  they assume 36, which would misread FMA's 12-bin CQT. We pass 12.
* STFT and CQT frames were centred with reflect padding (`constant` since 0.10). The CQT's
  tuning estimate is therefore made here on a reflect-padded STFT and passed to `cqt`,
  which is what `cqt(tuning=None)` does with 0.5.0's padding.
* CENS smoothing used a periodic Hann window (symmetric since 0.7).
* The CQT is today's (filter Q from librosa >= 0.10, soxr resampling); that is the CQT the
  torch extractor reproduces. One difference remains: soxr's FFT convolution leaves ~1e-8
  relative noise in digitally silent stretches, which chroma's per-frame normalisation
  turns into full-scale noise chroma, where 0.5.0's time-domain resampy (and the extractor)
  give exact zeros. Compare on audio without digital silence (`trim_digital_silence`).

Test/bench only: librosa is a test dependency of the project.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pandas as pd
import scipy.signal
from scipy import stats

FEATURE_SIZES = dict(chroma_stft=12, chroma_cqt=12, chroma_cens=12, tonnetz=6, mfcc=20,
                     rmse=1, zcr=1, spectral_centroid=1, spectral_bandwidth=1,
                     spectral_contrast=7, spectral_rolloff=1)
MOMENTS = ("mean", "std", "skew", "kurtosis", "median", "min", "max")


def columns() -> pd.MultiIndex:
    """features.py's `columns()`: (feature, statistics, number), sorted."""
    tuples = [(name, moment, f"{i + 1:02d}")
              for name, size in FEATURE_SIZES.items() for moment in MOMENTS
              for i in range(size)]
    names = ("feature", "statistics", "number")
    return pd.MultiIndex.from_tuples(tuples, names=names).sort_values()


def trim_digital_silence(x: np.ndarray) -> np.ndarray:
    """Drop exact zeros at both ends (see the module docstring: soxr noise in silence)."""
    return np.trim_zeros(x)


def cqt_frame_features(x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """chroma_cqt, chroma_cens and tonnetz frames from the 84-bin CQT, as features.py."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty tuning set on silence
        tuning = librosa.estimate_tuning(y=x, sr=sr, bins_per_octave=12, pad_mode="reflect")
    cqt = np.abs(librosa.cqt(x, sr=sr, hop_length=512, bins_per_octave=12, n_bins=7 * 12,
                             tuning=tuning, pad_mode="reflect"))
    assert cqt.shape[0] == 7 * 12
    assert np.ceil(len(x) / 512) <= cqt.shape[1] <= np.ceil(len(x) / 512) + 1
    f = {"chroma_cqt": librosa.feature.chroma_cqt(C=cqt, n_chroma=12, n_octaves=7,
                                                  bins_per_octave=12)}
    cens_window = scipy.signal.get_window("hann", 41 + 2, fftbins=True)
    f["chroma_cens"] = librosa.feature.chroma_cens(C=cqt, n_chroma=12, n_octaves=7,
                                                   bins_per_octave=12,
                                                   smoothing_window=cens_window)
    f["tonnetz"] = librosa.feature.tonnetz(chroma=f["chroma_cens"])
    return f


def stft_frame_features(x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """zcr and the STFT families, as features.py (which gives `sr` to melspectrogram only)."""
    f = {"zcr": librosa.feature.zero_crossing_rate(x, frame_length=2048, hop_length=512)}
    stft = np.abs(librosa.stft(x, n_fft=2048, hop_length=512, pad_mode="reflect"))
    assert stft.shape[0] == 1 + 2048 // 2
    assert np.ceil(len(x) / 512) <= stft.shape[1] <= np.ceil(len(x) / 512) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f["chroma_stft"] = librosa.feature.chroma_stft(S=stft**2, n_chroma=12)
    f["rmse"] = np.sqrt(np.mean(np.abs(stft) ** 2, axis=0, keepdims=True))
    f["spectral_centroid"] = librosa.feature.spectral_centroid(S=stft)
    f["spectral_bandwidth"] = librosa.feature.spectral_bandwidth(S=stft)
    f["spectral_contrast"] = librosa.feature.spectral_contrast(S=stft, n_bands=6)
    f["spectral_rolloff"] = librosa.feature.spectral_rolloff(S=stft)
    mel = librosa.feature.melspectrogram(sr=sr, S=stft**2)
    f["mfcc"] = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    return f


def frame_features(x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """The per-frame arrays features.py summarises, keyed by family name."""
    return {**cqt_frame_features(x, sr), **stft_frame_features(x, sr)}


def summarise(frames: dict[str, np.ndarray]) -> pd.Series:
    """features.py's `feature_stats` for every family given; families not given stay NaN."""
    features = pd.Series(index=columns(), dtype=np.float64)  # features.csv: float32
    for name, values in frames.items():
        features[name, "mean"] = np.mean(values, axis=1)
        features[name, "std"] = np.std(values, axis=1)
        features[name, "skew"] = stats.skew(values, axis=1)
        features[name, "kurtosis"] = stats.kurtosis(values, axis=1)
        features[name, "median"] = np.median(values, axis=1)
        features[name, "min"] = np.min(values, axis=1)
        features[name, "max"] = np.max(values, axis=1)
    return features


def compute_features(x: np.ndarray, sr: int) -> pd.Series:
    """features.py's `compute_features` for one mono float32 signal: 518 values."""
    return summarise(frame_features(x, sr))

"""Deterministic windowing that covers the whole track (see `Windowing`)."""

from __future__ import annotations

import numpy as np

from mfs.extractors.base import Windowing


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of windows of `window` samples every `hop`, covering all `n_samples`.

    A track shorter than one window gets a single window at 0 (the caller zero-pads). When
    the regular hops leave a tail uncovered, one last window is aligned to the track's end.
    """
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def cut_windows(samples: np.ndarray, sample_rate: int, windowing: Windowing) -> np.ndarray:
    """Cut mono `samples` into a (n_windows, window_samples) float32 array.

    With whole-track windowing the result is the track itself as one window.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if windowing.seconds is None:
        return samples[None, :]
    window = int(round(windowing.seconds * sample_rate))
    hop = int(round((windowing.hop_seconds or windowing.seconds) * sample_rate))
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    starts = window_starts(len(samples), window, hop)
    return np.stack([samples[s : s + window] for s in starts])

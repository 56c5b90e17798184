"""Deterministic windowing that covers the whole track (see `Windowing`).

`cut_windows` cuts a track already in memory; `WindowStream` cuts the same windows from a
track that arrives block by block, holding only about one window of samples, so an
hour-long track is never in memory at once.
"""

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


def window_samples(windowing: Windowing, sample_rate: int) -> tuple[int, int]:
    """(window, hop) in samples at `sample_rate`; only for windowed (not whole-track) cuts."""
    if windowing.seconds is None:
        raise ValueError("whole-track windowing has no window length in samples")
    window = int(round(windowing.seconds * sample_rate))
    hop = int(round((windowing.hop_seconds or windowing.seconds) * sample_rate))
    return window, hop


def cut_windows(samples: np.ndarray, sample_rate: int, windowing: Windowing) -> np.ndarray:
    """Cut mono `samples` into a (n_windows, window_samples) float32 array.

    With whole-track windowing the result is the track itself as one window.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if windowing.seconds is None:
        return samples[None, :]
    window, hop = window_samples(windowing, sample_rate)
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    starts = window_starts(len(samples), window, hop)
    return np.stack([samples[s : s + window] for s in starts])


class WindowStream:
    """`cut_windows` for a track fed in blocks: the same windows, in the same order.

    Regular windows are emitted as soon as their samples have arrived. Whether one more
    window, aligned to the end, is needed (or one zero-padded window, for a short track)
    is only known at the end, so the last `window` samples are always kept; nothing older
    than that, or than the next regular start, is.
    """

    def __init__(self, window: int, hop: int) -> None:
        self.window, self.hop = window, hop
        self.n_samples = 0  # samples fed so far
        self.emitted = 0  # windows emitted so far
        self._kept = np.zeros(0, dtype=np.float32)  # samples [n_samples - len(_kept), n_samples)

    def feed(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add the next block of mono samples; returns the windows it completes, each with
        its start sample (what a kept window's timestamp is made of)."""
        self._kept = np.concatenate([self._kept, np.asarray(samples, dtype=np.float32)])
        self.n_samples += len(samples)
        windows = []
        while (start := self.emitted * self.hop) + self.window <= self.n_samples:
            windows.append((start, self._slice(start)))
            self.emitted += 1
        keep_from = min(self.emitted * self.hop, self.n_samples - self.window)
        self._kept = self._kept[max(0, keep_from - self._kept_from()):]
        return windows

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows `window_starts` adds at the end (none, the end-aligned one, or the
        zero-padded one of a short track), with their start samples as `feed` gives."""
        starts = window_starts(self.n_samples, self.window, self.hop)[self.emitted:]
        self.emitted += len(starts)
        return [(start, self._slice(start)) for start in starts]

    def _kept_from(self) -> int:
        return self.n_samples - len(self._kept)

    def _slice(self, start: int) -> np.ndarray:
        """A copy, so a queued window does not keep its whole block alive; zero-padded past
        the end of a short track."""
        offset = start - self._kept_from()
        window = self._kept[offset : offset + self.window]
        if len(window) < self.window:
            return np.pad(window, (0, self.window - len(window)))
        return window.copy()

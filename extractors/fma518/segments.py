"""A track's samples as overlapping, hop-aligned segments of a centred framing.

Whole-track features that can be computed a range of frames at a time (fma518 in bounded
memory) read a long track through this: segment k holds the samples that frames
[k · frames, (k + 1) · frames) of the track's centred framing at `hop` depend on, plus
`margin` samples of context each side where the track has them. Framing a segment on its
own (centred at its first sample, as `spectral.stft_frames` frames a track) then gives
the track's frames at `keep`, computed from the very samples the whole track would give
them, and at the track's ends the same padding. Segments start on multiples of `hop`, so
any decimation by a power of two dividing `hop` keeps the track's phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """Samples [start, start + len(samples)) of the track; its own frames `keep` are the
    track's frames from `first_frame` on."""

    samples: np.ndarray
    start: int
    keep: slice
    first_frame: int


def segments(blocks: Iterable[np.ndarray], hop: int, frames: int, margin: int
             ) -> Iterator[Segment]:
    """The track of `blocks` as segments of `frames` frames (the last one up to the track's
    last frame, 1 + n // hop in all), each with `margin` samples of context (a multiple of
    `hop`). Holds about (frames · hop + 2 · margin) samples plus one block."""
    if margin % hop or frames < 1:
        raise ValueError(f"segments: margin {margin} must be a multiple of hop {hop}, "
                         f"frames {frames} at least 1")
    pending: list[np.ndarray] = []
    start = have = first = 0  # `pending` holds samples [start, start + have)
    for block in blocks:
        pending.append(block)
        have += len(block)
        while start + have >= (first + frames) * hop + margin:
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            end = (first + frames) * hop + margin
            yield _segment(joined[: end - start], start, first, first + frames, hop)
            first += frames
            next_start = first * hop - margin
            pending, have = [joined[next_start - start :]], start + have - next_start
            start = next_start
    if pending:
        joined = np.concatenate(pending)
        yield _segment(joined, start, first, 1 + (start + have) // hop, hop)


def _segment(samples: np.ndarray, start: int, first: int, stop: int, hop: int) -> Segment:
    offset = start // hop
    return Segment(samples, start, slice(first - offset, stop - offset), first)

"""Whole-track features of long tracks in bounded memory: per segment, then combined.

Libraries whose whole-track statistics keep every frame (openSMILE's functionals, Essentia's
MusicExtractor pool) grow with the track: ComParE ~30 MB per minute, MusicExtractor ~45 MB
per minute (bench/RESULTS.md, "Long tracks by segments"). Their extractors take `segment_s`
(`SegmentedConfig`). A track of at most `segment_s` seconds is analysed whole, exactly as
the library does. A longer one is cut into n = ceil(duration / segment_s) equal, consecutive
segments (each at most `segment_s` and more than half of it, so no short tail gets the
weight of a whole segment's statistics), each analysed alone as if it were a track, and the
track's vector is the duration-weighted mean of the segments' vectors, dimension by
dimension (`combine`). What that rule makes exact and what it approximates is the
extractor's to say (its docstring).

The default, 600 s, keeps every 30 s GTZAN/FMA clip and songs up to 10 minutes whole, as
before `segment_s` existed; memory then peaks with a 10-minute segment whatever the track.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from mfs.extractors.base import ExtractorConfig

SEGMENT_S = 600.0


@dataclass(frozen=True)
class SegmentedConfig(ExtractorConfig):
    """A whole-track extractor's config with `segment_s`: the longest track analysed whole;
    longer ones go by segments (module docstring). Every output stored before the field
    existed was computed whole, which the default still does for tracks up to 600 s, so
    `to_dict` leaves the default out and those hashes stay (as `NeuralConfig.precision`).
    Rows of tracks longer than 600 s stored before then are whole-track functionals under
    the same hash; re-extract them to have every row computed by one rule."""

    segment_s: float = field(default=SEGMENT_S, kw_only=True)

    def __post_init__(self) -> None:
        if not (self.segment_s > 0 and math.isfinite(self.segment_s)):
            raise ValueError(f"segment_s={self.segment_s} must be a positive number of seconds")

    def to_dict(self) -> dict:
        config = asdict(self)
        if config["segment_s"] == SEGMENT_S:
            del config["segment_s"]
        return config


def segment_ends(total: float, longest: float) -> list[float]:
    """Where each of the equal segments of a `total`-long track ends (the last at `total`):
    one segment when `total <= longest`, else ceil(total / longest) of them."""
    count = max(1, math.ceil(total / longest))
    return [total * (k + 1) / count for k in range(count)]


def split_blocks(blocks: Iterator[np.ndarray], ends: list[int]) -> Iterator[Iterator[np.ndarray]]:
    """The stream `blocks` as consecutive pieces that end at the sample positions `ends`
    (the last piece takes whatever follows too); each piece must be read to its end before
    the next is asked for."""
    pending = np.zeros(0, dtype=np.float32)
    position = 0  # samples of the stream handed out so far

    def piece(end: int | None) -> Iterator[np.ndarray]:
        nonlocal pending, position
        while True:
            if len(pending) == 0:
                pending = next(blocks, None)
                if pending is None:
                    pending = np.zeros(0, dtype=np.float32)
                    return
                continue
            take = len(pending) if end is None else min(len(pending), end - position)
            if take <= 0:
                return
            out, pending = pending[:take], pending[take:]
            position += take
            yield out

    for index, end in enumerate(ends):
        yield piece(None if index == len(ends) - 1 else end)


def combine(vectors: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """One vector from the segments' `vectors` (segments, dim): each dimension's mean over
    the segments weighted by their `durations`, over the segments where it is a number (a
    value NaN in every segment stays NaN). One segment gives its vector unchanged."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) == 1:
        return vectors[0].astype(np.float32)
    weights = np.broadcast_to(np.asarray(durations, dtype=np.float64)[:, None], vectors.shape)
    present = ~np.isnan(vectors)
    weight = np.where(present, weights, 0.0).sum(axis=0)
    total = np.where(present, vectors * weights, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan).astype(np.float32)

"""Pooling per-window outputs into per-track vectors, one batch of windows at a time.

A long track's windows reach the model over many batches, so the statistics stored per
track (`<output>_<stat>`, store/SCHEMA.md) are kept as running values merged batch by
batch, never by holding every window's output until the track ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mfs.store.columns import POOLING_STATS, column_name

if TYPE_CHECKING:  # at run time this module needs NumPy only, so analysis/ can pool too
    from mfs.extractors.base import OutputSpec


def stored_columns(spec: OutputSpec) -> list[tuple[str, str | None, int | None]]:
    """(column, statistic, layer) of each column `spec` is stored as, in stored order.

    The statistic is None for a whole-track output stored as is (`pooling=()`), the layer
    None for outputs without layers.
    """
    if not spec.pooling:
        return [(column_name(spec.name, None), None, None)]
    unknown = set(spec.pooling) - set(POOLING_STATS)
    if unknown:
        raise ValueError(f"output {spec.name!r}: unknown pooling {sorted(unknown)}; "
                         f"choose from {list(POOLING_STATS)}")
    layers = range(spec.layers) if spec.layers else [None]
    return [(column_name(spec.name, stat, layer), stat, layer)
            for stat in spec.pooling for layer in layers]


def window_columns(spec: OutputSpec) -> list[tuple[str, int | None]]:
    """(column, layer) of each column `spec` is kept as per window (`keep_windows`): the
    stored columns' names without their statistic, `<output>` or `<output>_l<NN>`."""
    layers = range(spec.layers) if spec.layers else [None]
    return [(column_name(spec.name, None, layer), layer) for layer in layers]


class RunningStats:
    """Mean, std, max and min over windows, updated a batch at a time.

    Means and spreads are merged with Chan et al.'s pairwise update in float64, so the
    result matches a two-pass computation over all windows however they were batched.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: np.ndarray | None = None  # the first window's output, for `pooling=()`
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None  # sum of squared deviations from the mean
        self.max: np.ndarray | None = None
        self.min: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        """Merge the outputs of more windows, shape (windows, …)."""
        if len(values) == 0:
            return
        values = np.asarray(values, dtype=np.float64)
        n = len(values)
        mean = values.mean(axis=0)
        m2 = np.square(values - mean).sum(axis=0)
        if self.count == 0:
            self.first = values[0]
            self.mean, self.m2 = mean, m2
            self.max, self.min = values.max(axis=0), values.min(axis=0)
        else:
            total = self.count + n
            delta = mean - self.mean
            self.mean = self.mean + delta * (n / total)
            self.m2 = self.m2 + m2 + np.square(delta) * (self.count * n / total)
            self.max = np.maximum(self.max, values.max(axis=0))
            self.min = np.minimum(self.min, values.min(axis=0))
        self.count += n

    def value(self, stat: str | None) -> np.ndarray:
        """One statistic as float32; None gives the first window's output."""
        if self.count == 0:
            raise ValueError("no windows were pooled")
        values = {"mean": self.mean, "max": self.max, "min": self.min, None: self.first}
        if stat == "std":
            return np.sqrt(self.m2 / self.count).astype(np.float32)
        return values[stat].astype(np.float32)


def pool_by_id(ids: np.ndarray, windows: np.ndarray, stats: tuple[str, ...]
               ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Per distinct id (sorted): each statistic over its windows (float32), and the count."""
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    pooled = {stat: np.empty((len(unique), *windows.shape[1:]), np.float32) for stat in stats}
    for index, group in enumerate(np.split(windows[order], np.cumsum(counts)[:-1])):
        running = RunningStats()
        running.add(group)
        for stat in stats:
            pooled[stat][index] = running.value(stat)
    return [str(value) for value in unique], pooled, counts


class TrackPool:
    """The running pooled outputs of one track, ready to become its feature row."""

    def __init__(self, specs: tuple[OutputSpec, ...]) -> None:
        self.specs = specs
        self.stats = {spec.name: RunningStats() for spec in specs}

    @property
    def n_windows(self) -> int:
        """Windows merged so far (every output has one row per window)."""
        return self.stats[self.specs[0].name].count

    def add(self, outputs: dict[str, np.ndarray]) -> None:
        """Merge the outputs of some of the track's windows, (windows, …) per output."""
        for spec in self.specs:
            self.stats[spec.name].add(outputs[spec.name])

    def columns(self) -> dict[str, np.ndarray]:
        """The stored columns of every output (see `stored_columns`)."""
        columns = {}
        for spec in self.specs:
            stats = self.stats[spec.name]
            for column, stat, layer in stored_columns(spec):
                value = stats.value(stat)
                columns[column] = value if layer is None else value[layer]
        return columns

"""The names of stored embedding columns (SCHEMA.md, `features/`), built and parsed here
only, so that pooling, the row builder, the `features` view and analysis agree on them.

A column is `<output>` (a whole-track value stored as is), `<output>_<stat>` (pooled over
windows) or `<output>_l<NN>_<stat>` (one layer of a per-layer output, numbered from 0).
"""

from __future__ import annotations

import re
from typing import NamedTuple

POOLING_STATS = ("mean", "std", "max", "min")

_LAYER = re.compile(r"(?P<output>.+)_l(?P<layer>\d+)")


class ColumnName(NamedTuple):
    """What a stored column holds: which output, which layer of it (None: the output has
    no layers) and which statistic over windows (None: a whole-track value as is)."""

    output: str
    layer: int | None
    stat: str | None


def column_name(output: str, stat: str | None, layer: int | None = None) -> str:
    """The stored column of one statistic (None: the value as is) of one layer (None: an
    output without layers) of an output."""
    name = output if layer is None else f"{output}_l{layer:02d}"
    return name if stat is None else f"{name}_{stat}"


def parse_column(name: str) -> ColumnName:
    """The inverse of `column_name`: a name without a known statistic suffix is a
    whole-track value stored as is."""
    head, _, stat = name.rpartition("_")
    if not head or stat not in POOLING_STATS:
        return ColumnName(name, None, None)
    layered = _LAYER.fullmatch(head)
    if layered is None:
        return ColumnName(head, None, stat)
    return ColumnName(layered["output"], int(layered["layer"]), stat)


def layer_counts(columns: list[str]) -> dict[str, int]:
    """Layers per output with layers (the highest stored layer + 1), as recorded in the
    feature files' `mfs.layers` schema metadata."""
    counts: dict[str, int] = {}
    for column in columns:
        parsed = parse_column(column)
        if parsed.layer is not None:
            counts[parsed.output] = max(counts.get(parsed.output, 0), parsed.layer + 1)
    return counts

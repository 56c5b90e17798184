"""Join several extractors' features on track_id into one training matrix.

SQL decides which tracks qualify (those with every selected feature, and a genre when
labels are needed) and why the others were dropped. Vectors are then streamed per
selection straight into a preallocated float32 matrix, so the wide table never exists
twice in memory (see bench/RESULTS.md for what this saves against a pandas join).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfs.analysis.selection import Selection, resolve_all
from mfs.analysis.sqlfiles import ident, sql_text
from mfs.store import Store

BATCH_ROWS = 8192


@dataclass
class Block:
    """Where one selection's dimensions sit in the matrix."""

    selection: Selection
    start: int
    stop: int


@dataclass
class TrainingTable:
    """Features (rows = tracks sorted by id) with labels, split and artist per track."""

    library: str
    track_ids: np.ndarray
    X: np.ndarray
    feature_names: list[str]
    blocks: list[Block]
    genre: np.ndarray
    split: np.ndarray
    artist: np.ndarray
    dropped: dict = field(default_factory=dict)

    @property
    def selections(self) -> list[Selection]:
        return [block.selection for block in self.blocks]

    def block(self, spec: str) -> Block:
        for block in self.blocks:
            if block.selection.spec == spec:
                return block
        raise KeyError(f"feature selection {spec!r} is not in this training table")


def load_training_table(store: Store, library: str, specs: list[str],
                        require_label: bool = True) -> TrainingTable:
    """The wide table of `specs` over `library`'s tracks that have all of them.

    Non-finite values are stored as NaN (counted in `dropped["non_finite_values"]`) so
    that one imputation step handles every kind of missing value.
    """
    if library not in store.libraries():
        known = ", ".join(store.libraries()) or "none yet"
        raise KeyError(f"unknown library {library!r} in store {store.root} (known: {known})")
    if not specs:
        raise ValueError("no features selected; name at least one extractor")
    con = store.connect()
    selections = resolve_all(store, con, specs, library)
    keys = _kept_tracks(con, library, selections, require_label)
    dropped = _dropped_counts(con, library, selections, require_label, keys.num_rows)
    n = keys.num_rows
    con.register("_mfs_kept", pa.table({"track_id": keys.column("track_id"),
                                        "row_idx": pa.array(np.arange(n, dtype=np.int64))}))
    X = np.empty((n, sum(s.dim for s in selections)), dtype=np.float32)
    blocks, start, non_finite = [], 0, 0
    for selection in selections:
        non_finite += _fill_block(con, selection, X, start)
        blocks.append(Block(selection, start, start + selection.dim))
        start += selection.dim
    dropped["non_finite_values"] = non_finite
    return TrainingTable(
        library=library,
        track_ids=keys.column("track_id").to_numpy(zero_copy_only=False),
        X=X,
        feature_names=[name for s in selections for name in s.feature_names],
        blocks=blocks,
        genre=keys.column("genre").to_numpy(zero_copy_only=False),
        split=keys.column("split").to_numpy(zero_copy_only=False),
        artist=keys.column("artist").to_numpy(zero_copy_only=False),
        dropped=dropped,
    )


def _has_features(selection: Selection, config_param: str) -> str:
    """Subquery of the track_ids that have every column of `selection`."""
    filled = " AND ".join(f"{ident(c.name)} IS NOT NULL" for c in selection.columns)
    return (f"SELECT track_id FROM {ident(selection.view)} "
            f"WHERE config_hash = ${config_param} AND {filled}")


def _config_params(selections: list[Selection]) -> dict[str, str]:
    return {f"h{i}": s.config_hash for i, s in enumerate(selections)}


def _kept_tracks(con, library: str, selections: list[Selection], require_label: bool) -> pa.Table:
    has = "".join(f" AND t.track_id IN ({_has_features(s, f'h{i}')})"
                  for i, s in enumerate(selections))
    sql = sql_text("training_keys").format(
        has_features=has, has_label=" AND t.genre IS NOT NULL" if require_label else "")
    return con.sql(sql, params={"library": library, **_config_params(selections)}
                   ).to_arrow_table()


def _dropped_counts(con, library: str, selections: list[Selection], require_label: bool,
                    kept: int) -> dict:
    """How many library tracks lack each selection (and a genre), and how many were kept."""
    missing = "".join(
        f", count(*) FILTER (WHERE t.track_id NOT IN ({_has_features(s, f'h{i}')})) AS "
        f"{ident('missing ' + s.spec)}"
        for i, s in enumerate(selections))
    result = con.execute(sql_text("training_dropped").format(missing_counts=missing),
                         {"library": library, **_config_params(selections)})
    counts = dict(zip([d[0] for d in result.description], result.fetchall()[0], strict=True))
    if not require_label:
        counts.pop("no_genre")
    counts["kept"] = kept
    counts["dropped"] = counts["library_tracks"] - kept
    return counts


def _fill_block(con, selection: Selection, X: np.ndarray, start: int) -> int:
    """Stream one selection's vectors into X[:, start:…]; returns the non-finite count."""
    columns = ", ".join(f"v.{ident(c.name)}" for c in selection.columns)
    sql = sql_text("training_vectors").format(columns=columns, view=ident(selection.view))
    reader = con.sql(sql, params={"config_hash": selection.config_hash}).to_arrow_reader(
        BATCH_ROWS)
    non_finite = 0
    for batch in reader:
        rows = batch.column(0).to_numpy()
        offset = start
        for column, values in zip(selection.columns, batch.columns[1:], strict=True):
            flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
            block = flat.reshape(len(rows), column.dim)
            bad = ~np.isfinite(block)
            if bad.any():
                non_finite += int(bad.sum())
                block = np.where(bad, np.float32(np.nan), block)
            X[rows, offset: offset + column.dim] = block
            offset += column.dim
    return non_finite

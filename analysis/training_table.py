"""Join several extractors' features on track_id into one training matrix.

SQL decides which tracks have every selected feature (a semi-join per selection); those
without one, or without a genre when labels are needed, are dropped and counted, after the
population's filters and before its `min_per_genre` (`analysis/population.py`). Vectors
are then streamed per selection straight into a preallocated float32 matrix, so the wide
table never exists twice in memory (bench/RESULTS.md compares this with a pandas join).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfs.analysis.population import (
    Funnel,
    Population,
    min_per_genre_keep,
    narrow,
    several_at_level,
    track_labels,
    where_track_ids,
)
from mfs.analysis.selection import Selection, check_distinct_columns, resolve_all
from mfs.analysis.sqlfiles import sql_text
from mfs.store import Store
from mfs.store.sql import ident

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS = 8192


@dataclass
class Block:
    """Where one selection's dimensions sit in the matrix."""

    selection: Selection
    start: int
    stop: int


@dataclass
class TrainingTable:
    """Features (rows = tracks sorted by id) with labels, split and artist per track.
    `genre` is the population's label; `genres` every genre of the track (FMA's
    `genres_all`); `population` the record of `Funnel.record`."""

    library: str
    track_ids: np.ndarray
    X: np.ndarray
    feature_names: list[str]
    blocks: list[Block]
    genre: np.ndarray
    split: np.ndarray
    artist: np.ndarray
    dropped: dict = field(default_factory=dict)
    genres: list = field(default_factory=list)
    population: dict = field(default_factory=dict)

    @property
    def selections(self) -> list[Selection]:
        return [block.selection for block in self.blocks]

    def block(self, spec: str) -> Block:
        for block in self.blocks:
            if block.selection.spec == spec:
                return block
        raise KeyError(f"feature selection {spec!r} is not in this training table")


def load_training_table(store: Store, library: str, specs: list[str],
                        require_label: bool = True, distinct_columns: bool = True,
                        con: duckdb.DuckDBPyConnection | None = None,
                        population: Population | None = None) -> TrainingTable:
    """The wide table of `specs` over `library`'s tracks that have all of them.

    Non-finite values are stored as NaN (counted in `dropped["non_finite_values"]`) so
    that one imputation step handles every kind of missing value. `distinct_columns=False`
    lets specs overlap (benchmarks comparing `a:col` with `a` load both blocks). `con`: the
    command's connection to the store, if it has one (making one builds every view).
    `population`: the label and filters (default: every track, labelled with `genre`).
    """
    store.require_library(library)
    if not specs:
        raise ValueError("no features selected; name at least one extractor")
    population = population or Population()
    con = con or store.connect()
    selections = resolve_all(store, con, specs, library)
    if distinct_columns:
        check_distinct_columns(selections)
    tracks = _library_tracks(con, library, selections, population)
    labels = track_labels(tracks, population)
    tracks = tracks.set_column(tracks.column_names.index("genre"), "genre",
                               pa.array(labels, pa.string()))
    funnel = Funnel(labels, tracks.column("split").to_numpy(zero_copy_only=False))
    where_ids = (where_track_ids(store, library, population.where)
                 if population.where is not None else None)
    narrow(funnel, population, tracks, where_ids)
    _, dropped = _keep(tracks, selections, require_label)  # counts over the whole library
    if require_label:
        several = several_at_level(tracks, population)
        if several.any():
            funnel.drop(f"several genres at {population.label}", ~several)
        funnel.drop("no label" if population.level is None else f"no genre at {population.label}",
                    labels != None)  # noqa: E711
    for i, selection in enumerate(selections):
        funnel.drop(f"missing {selection.spec}",
                    tracks.column(f"has_{i}").to_numpy(zero_copy_only=False))
    rows = np.flatnonzero(funnel.keep)
    keys = tracks.take(pa.array(rows))
    con.register("_mfs_kept", pa.table({
        "track_id": keys.column("track_id"),
        "row_idx": pa.array(np.arange(keys.num_rows, dtype=np.int64))}))
    X = np.empty((keys.num_rows, sum(s.dim for s in selections)), dtype=np.float32)
    lacking_rows, non_finite = _fill_blocks(con, selections, X)
    blocks, start = [], 0
    for selection, lacking in zip(selections, lacking_rows, strict=True):
        dropped[f"missing {selection.spec}"] += int(lacking.sum())
        if lacking.any():
            funnel.drop(f"missing {selection.spec}", ~_full_mask(lacking, rows, len(labels)))
        blocks.append(Block(selection, start, start + selection.dim))
        start += selection.dim
    if population.min_per_genre:
        funnel.drop(f"--min-per-genre {population.min_per_genre}",
                    min_per_genre_keep(funnel, population.min_per_genre))
    final = funnel.keep[rows]
    if not final.all():  # rare without filters, so the copy this makes is rare too
        X, keys = X[final], keys.filter(pa.array(final))
    if population.filtered:
        dropped["filtered"] = int(sum(step["dropped"] for step in funnel.steps
                                      if step["step"].startswith("--")))
    dropped |= {"kept": keys.num_rows, "dropped": dropped["library_tracks"] - keys.num_rows}
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
        genres=[g or [] for g in keys.column("genres").to_pylist()],
        population=funnel.record(population, tracks.num_rows),
    )


def _full_mask(lacking: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """A mask over the library's tracks from one over the kept `rows`."""
    mask = np.zeros(n, dtype=bool)
    mask[rows[lacking]] = True
    return mask


def _library_tracks(con, library: str, selections: list[Selection],
                    population: Population) -> pa.Table:
    """All tracks of the library with labels and one `has_<i>` flag per selection.

    The flags look at keys only: testing the vector columns for NULL here would read every
    vector once more (3 s per 100k × 1024 column); `_fill_blocks` finds those instead.
    """
    first = _first_of_config(selections)
    has = "".join(
        f", t.track_id IN (SELECT track_id FROM {ident(s.view)} WHERE config_hash = $h{i}) "
        f"AS has_{i}" for i, s in enumerate(selections) if first[i] == i)
    params = {"library": library} | {f"h{i}": s.config_hash for i, s in enumerate(selections)
                                     if first[i] == i}
    # genre_levels only when a level is the label: a store scanned before it has none.
    levels = ", t.genre_levels" if population.level is not None else ""
    if levels and "genre_levels" not in {c[0] for c in con.sql(
            "SELECT * FROM tracks LIMIT 0").description}:
        raise ValueError(f"--label {population.label}: library {library!r} was scanned before "
                         "mfs kept genre levels; rescan it (mfs scan --name LIBRARY)")
    tracks = con.sql(sql_text("training_tracks").format(has_columns=has, level_column=levels),
                     params=params).to_arrow_table()
    for i, j in enumerate(first):  # selections of one config share its flag
        if j != i:
            tracks = tracks.append_column(f"has_{i}", tracks.column(f"has_{j}"))
    return tracks


def _first_of_config(selections: list[Selection]) -> list[int]:
    """Per selection, the index of the first selection of the same extractor config."""
    first: dict[tuple[str, str], int] = {}
    return [first.setdefault((s.view, s.config_hash), i) for i, s in enumerate(selections)]


def _keep(tracks: pa.Table, selections: list[Selection], require_label: bool
          ) -> tuple[np.ndarray, dict]:
    """Which tracks go into the table, and how many lack each requirement."""
    keep = np.ones(tracks.num_rows, dtype=bool)
    dropped = {"library_tracks": tracks.num_rows}
    if require_label:
        labelled = tracks.column("genre").is_valid().to_numpy(zero_copy_only=False)
        dropped["no_genre"] = int((~labelled).sum())
        keep &= labelled
    for i, selection in enumerate(selections):
        has = tracks.column(f"has_{i}").to_numpy(zero_copy_only=False)
        dropped[f"missing {selection.spec}"] = int((~has).sum())
        keep &= has
    kept = int(keep.sum())
    return keep, dropped | {"kept": kept, "dropped": tracks.num_rows - kept}


def _fill_blocks(con, selections: list[Selection], X: np.ndarray
                 ) -> tuple[list[np.ndarray], int]:
    """Stream every selection's vectors into its columns of X, one query per extractor
    config however many selections it has (a 25-layer sweep reads its store once, not 25
    times; a column two selections share is read once and written twice). Returns, per
    selection, which rows lack a selected column (NULL there: a column that only later
    parts have), and how many values were not finite."""
    starts = np.cumsum([0] + [s.dim for s in selections])
    lacking = [np.zeros(len(X), dtype=bool) for _ in selections]
    groups: dict[int, list[int]] = {}
    for i, j in enumerate(_first_of_config(selections)):
        groups.setdefault(j, []).append(i)
    non_finite = 0
    for first, members in groups.items():
        # column name → its size and every (selection, matrix offset) it goes to
        targets: dict[str, tuple[int, list[tuple[int, int]]]] = {}
        for i in members:
            offset = int(starts[i])
            for column in selections[i].columns:
                targets.setdefault(column.name, (column.dim, []))[1].append((i, offset))
                offset += column.dim
        columns = ", ".join(f"v.{ident(name)}" for name in targets)
        sql = sql_text("training_vectors").format(columns=columns,
                                                  view=ident(selections[first].view))
        reader = con.sql(sql, params={"config_hash": selections[first].config_hash}
                         ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            rows = batch.column(0).to_numpy()
            for (dim, places), values in zip(targets.values(), batch.columns[1:], strict=True):
                rows_here = rows
                if values.null_count:
                    valid = values.is_valid().to_numpy(zero_copy_only=False)
                    for i, _ in places:
                        lacking[i][rows[~valid]] = True
                    rows_here, values = rows[valid], values.filter(pa.array(valid))
                flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
                block = flat.reshape(len(rows_here), dim)
                bad = ~np.isfinite(block)
                if bad.any():
                    non_finite += int(bad.sum()) * len(places)
                    block = np.where(bad, np.float32(np.nan), block)
                for _, offset in places:
                    X[rows_here, offset: offset + dim] = block
    return lacking, non_finite

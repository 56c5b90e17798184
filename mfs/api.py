"""The store from Python, for notebooks: the same tables the CLI prints and writes.

    from mfs import open_store
    s = open_store("data/store")
    t = s.training_table("gtzan", ["fma518", "musicnn-msd"], split="official")
    t.X, t.y, t.split, t.track_id, t.feature_names      # numpy arrays, list of names
    t.to_polars()                                        # or .to_pandas(), .to_arrow()
    s.features("musicnn-msd", library="gtzan")           # newest row per track, one config
    s.sql("SELECT genre, count(*) AS n FROM tracks GROUP BY genre")

(README.md, "Read the store in a notebook", has the same as a doctest that the tests run.)

Why not read the Parquet files directly: a glob over `features/<extractor>/` mixes every
library and every config of the extractor, and a track extracted twice has two rows; the
labels are in `tracks/`, the dimension names in each part's footer. These functions go
through the store's DuckDB views, which keep the newest row per (track, config) and leave
damaged files out, and through the code `mfs export` and `mfs sql` run, so a notebook
sees exactly what the commands show: `training_table` is `mfs export`'s table (the same
population filters as `mfs bench`), `sql` is `mfs sql` (read-only, the store's files only).

Importing this module is cheap (no torch, no scikit-learn until a table is built).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mfs.store import Store

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow as pa

    from mfs.analysis.export import TrainingData
    from mfs.analysis.selection import Selection

    Frame = polars.DataFrame | polars.LazyFrame | pa.Table | pandas.DataFrame

As = Literal["polars", "lazy", "arrow", "pandas"]
FORMATS = ("polars", "lazy", "arrow", "pandas")


def open_store(path: Path | str | None = None) -> StoreHandle:
    """The store at `path` (default `$MFS_STORE`, else `data/store`, as the CLI's
    `--store`); a folder that holds no store is refused in one line."""
    store = Store(path)
    if not store.tracks_dir.is_dir():
        raise FileNotFoundError(f"no store at {store.root} (no tracks/ folder); scan a library "
                                f"into it first: mfs scan PATH --kind KIND --name NAME "
                                f"--store {store.root}")
    return StoreHandle(store)


class StoreHandle:
    """Reads one store. Holds no connection: each call opens its own, so a handle stays
    valid while `mfs extract` adds features (the next call sees them)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"StoreHandle({str(self.store.root)!r})"

    def libraries(self) -> list[str]:
        return self.store.libraries()

    def extractors(self) -> list[str]:
        return self.store.extractors()

    def training_table(self, library: str, features: str | Sequence[str],
                       split: str = "auto", *, folds: int = 5, seed: int = 0,
                       label: str = "genre_top", subset: str | None = None,
                       genres: str | Sequence[str] = (),
                       exclude_genres: str | Sequence[str] = (), where: str | None = None,
                       min_per_genre: int | None = None,
                       labelled_only: bool = False) -> TrainingData:
        """`mfs export`'s table in memory (`mfs.analysis.export.TrainingData`): `.X`
        (float32), `.y` (the label), `.split`, `.track_id`, `.artist`, `.genres`,
        `.feature_names`, `.metadata`; `.to_polars()`, `.to_pandas()`, `.to_arrow()`,
        `.write(path)`.

        `features`: specs `extractor[@config_hash][:column]` (`musicnn-msd:tags_mean`,
        `mert-v1-95m:layer=7`), as a list or comma-separated. `split`: auto, official,
        kfold or artist (then the fold each track is tested in, as `mfs bench` makes it).
        The population options are `mfs bench`'s: `label` (genre_top or levelN), then
        `subset` → `genres`/`exclude_genres` → `where` (one condition on `tracks`) →
        `min_per_genre`. Unlabelled tracks are kept (`y` is None) unless `labelled_only`
        or a filter needs a label.
        """
        from mfs.analysis.export import training_data
        from mfs.analysis.population import Population, parse_genres
        from mfs.analysis.selection import split_specs

        population = Population(label=label, subset=subset, genres=_names(genres, parse_genres),
                                exclude_genres=_names(exclude_genres, parse_genres),
                                where=where, min_per_genre=min_per_genre)
        return training_data(self.store, library, _specs(features, split_specs), split, folds,
                             seed, population, require_label=labelled_only)

    def features(self, spec: str, library: str | None = None, as_: As = "polars") -> Frame:
        """One extractor config's stored rows: `track_id`, provenance (`config_hash`,
        `model_hash`, `created_at`, …) and the selected embedding columns as fixed-size
        lists, one row per track (the newest, as the views keep), sorted by track_id.

        `spec` as in `training_table`; without `@config_hash` the extractor must have one
        config (in `library`, if given). `as_`: polars (DataFrame), lazy (a polars
        LazyFrame over the result), arrow (with each column's dimension names in the
        schema metadata `mfs.feature_names`) or pandas.
        """
        _check_as(as_)
        from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE
        from mfs.store.sql import ident

        con = self.store.connect()
        try:
            selection = self._resolve(con, spec, library)
            # Parquet has no fixed-size lists, so DuckDB reads the vectors as FLOAT[]: the
            # cast gives back the store's type (a 2-D array in numpy and polars).
            names = [*(ident(n) for n in FEATURE_KEY_AND_PROVENANCE.names),
                     *(f"{ident(c.name)}::FLOAT[{c.dim}] AS {ident(c.name)}"
                       for c in selection.columns)]
            sql = (f"SELECT {', '.join(names)} FROM {ident(selection.view)} "
                   "WHERE config_hash = $config_hash")
            params = {"config_hash": selection.config_hash}
            if library is not None:
                sql += " AND track_id IN (SELECT track_id FROM tracks WHERE library = $library)"
                params["library"] = library
            table = con.sql(sql + " ORDER BY track_id", params=params).to_arrow_table()
        finally:
            con.close()
        table = table.replace_schema_metadata({"mfs.feature_names": json.dumps(
            {c.name: list(c.feature_names) for c in selection.columns})})
        return _convert(table, as_)

    def feature_names(self, spec: str, library: str | None = None) -> list[str]:
        """The per-dimension names a training table gives `spec`'s columns, in order."""
        con = self.store.connect()
        try:
            return self._resolve(con, spec, library).feature_names
        finally:
            con.close()

    def sql(self, query: str, as_: As = "polars") -> Frame:
        """`mfs sql`: read-only SQL over the store's views (tracks, the extractor views,
        features, leaderboard, runs, failures; store/SCHEMA.md); the last statement's
        result. Writing statements and files outside the store are refused in one line."""
        _check_as(as_)
        from mfs.read_only_sql import run_read_only

        return _convert(run_read_only(self.store, query, lambda result: result.to_arrow_table()),
                        as_)

    def _resolve(self, con, spec: str, library: str | None) -> Selection:
        from mfs.analysis.selection import resolve

        if library is not None:
            self.store.require_library(library)
        return resolve(self.store, con, spec, library)


def _specs(features: str | Sequence[str], split_specs) -> list[str]:
    """A comma list as the CLI takes it, or a list of specs (each may hold commas too)."""
    values = [features] if isinstance(features, str) else list(features)
    return [spec for value in values for spec in split_specs(value)]


def _names(values: str | Sequence[str], parse_genres) -> tuple[str, ...]:
    return parse_genres(values) if isinstance(values, str) else tuple(values)


def _check_as(as_: str) -> None:
    if as_ not in FORMATS:
        raise ValueError(f"as_={as_!r}: use one of {', '.join(FORMATS)}")


def _convert(table: pa.Table, as_: As) -> Frame:
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    import polars

    frame = polars.from_arrow(table)
    return frame.lazy() if as_ == "lazy" else frame

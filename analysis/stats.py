"""Per-extractor, per-dimension statistics (mean, std, range, NaN/inf shares, dead dims).

Computed in DuckDB (`sql/dimension_stats.sql`) straight over the Parquet parts, so a
3,000-dimension extractor over a whole library never has to fit in pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mfs.analysis.selection import resolve
from mfs.analysis.sqlfiles import sql_text
from mfs.store import Store
from mfs.store.sql import ident

if TYPE_CHECKING:
    import duckdb

GROUP_COLUMNS = ("genre", "split", "library", "artist")


def feature_stats(store: Store, spec: str, library: str | None = None,
                  by: str | None = None, con: duckdb.DuckDBPyConnection | None = None
                  ) -> pd.DataFrame:
    """One row per (column, group, dimension) of the selected features.

    `by` groups by a tracks column (genre, split, library, artist); `library` restricts
    to one library's tracks. Columns: extractor, config_hash, column, group, dim, feature,
    n, mean, std, min, max, nan_share, inf_share, dead. `con`: a connection to the store
    to reuse (making one builds every extractor's view).
    """
    if by is not None and by not in GROUP_COLUMNS:
        raise ValueError(f"cannot group statistics by {by!r}; use one of "
                         f"{', '.join(GROUP_COLUMNS)}")
    con = con or store.connect()
    selection = resolve(store, con, spec, library)
    frames = []
    for column in selection.columns:
        sql = sql_text("dimension_stats").format(
            group=f"t.{ident(by)}" if by else "NULL::VARCHAR",
            column=ident(column.name), view=ident(selection.view))
        frame = con.sql(sql, params={"config_hash": selection.config_hash,
                                     "library": library}).df()
        frame.insert(0, "column", column.name)
        frame.insert(3, "feature", [column.feature_names[d] for d in frame["dim"]])
        frames.append(frame)
    stats = pd.concat(frames, ignore_index=True)
    stats.insert(0, "config_hash", selection.config_hash)
    stats.insert(0, "extractor", selection.extractor)
    return stats


def summarise(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per (extractor, column, group): dims, dead dims, NaN/inf shares, spread."""
    keys = ["extractor", "config_hash", "column", "group"]
    grouped = stats.groupby(keys, dropna=False, sort=False)
    return grouped.agg(
        tracks=("n", "max"), dims=("dim", "size"), dead_dims=("dead", "sum"),
        nan_share=("nan_share", "mean"), inf_share=("inf_share", "mean"),
        mean_of_means=("mean", "mean"), mean_std=("std", "mean"),
        min=("min", "min"), max=("max", "max"),
    ).reset_index()


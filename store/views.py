"""DuckDB views over the store's Parquet files, so everything downstream is plain SQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from mfs.store import health, schema
from mfs.store.columns import column_name, parse_column
from mfs.store.sql import ident, literal

if TYPE_CHECKING:
    from mfs.store.store import Store


def view_name(extractor: str) -> str:
    """SQL-friendly view name of an extractor: `musicnn-mtt` → `musicnn_mtt`."""
    return re.sub(r"[^A-Za-z0-9_]", "_", extractor)


def create_views(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Create `tracks`, `failures`, `failures_latest`, `runs`, `runs_history`,
    `leaderboard`, `predictions`, `prompts` (every stored prompt embedding), one view per
    extractor (and `<view>_windows` where windows were kept) and the long `features` view
    on `con`.
    Damaged files are left out (one warning line)."""
    damaged = _table_view(con, "tracks", store.tracks_dir, schema.TRACKS, store.root)
    damaged += create_failure_views(con, store, warn=False)
    damaged += create_run_views(con, store)
    damaged += _table_view(con, "leaderboard", store.leaderboard_dir, schema.LEADERBOARD,
                           store.root)
    damaged += _table_view(con, "predictions", store.predictions_dir, schema.PREDICTIONS,
                           store.root)
    prompt_parts, left_out = _read_parts(store.root,
                                         sorted(store.prompts_dir.glob("*/*/*.parquet")),
                                         store.prompts_dir / "*" / "*")
    damaged += left_out
    if prompt_parts is None:
        _empty_view(con, "prompts", schema.PROMPTS)
    else:
        con.execute(f"CREATE OR REPLACE VIEW prompts AS SELECT * FROM {prompt_parts}")
    long_parts = []
    for extractor in store.extractors():
        name = view_name(extractor)
        files = sorted((store.features_dir / extractor).glob("*/*.parquet"))
        parts, left_out = _read_parts(store.root, files, store.features_dir / extractor / "*")
        damaged += left_out
        if parts is None:  # every part damaged: an empty view keeps queries on it valid
            _empty_view(con, name, schema.FEATURE_KEY_AND_PROVENANCE)
            damaged += _windows_view(con, store, extractor)
            continue
        # A retried batch can never duplicate a key (the planner excludes stored pairs),
        # but the view keeps the newest row per key anyway so readers never see two. The
        # newest keys are found on the three narrow columns and semi-joined back, so the
        # wide vectors are never sorted.
        con.execute(
            f"""CREATE OR REPLACE VIEW {ident(name)} AS
            SELECT * FROM {parts} SEMI JOIN (
                SELECT track_id, config_hash, max(created_at) AS created_at FROM {parts}
                GROUP BY track_id, config_hash) newest
            USING (track_id, config_hash, created_at)"""
        )
        damaged += _windows_view(con, store, extractor)
        for column in embedding_columns(con, name):
            # The layer is a column of its own, so SQL never parses it out of a name.
            output, layer, stat = parse_column(column)
            long_parts.append(
                f"""SELECT track_id, extractor, config_hash,
                {literal(column_name(output, stat))} AS output,
                {"NULL" if layer is None else layer}::INTEGER AS layer,
                {ident(column)}::FLOAT[] AS vector, created_at FROM {ident(name)}
                WHERE {ident(column)} IS NOT NULL"""
            )
    if long_parts:
        con.execute("CREATE OR REPLACE VIEW features AS " + " UNION ALL ".join(long_parts))
    else:
        con.execute(
            """CREATE OR REPLACE VIEW features AS SELECT NULL::VARCHAR AS track_id,
            NULL::VARCHAR AS extractor, NULL::VARCHAR AS config_hash, NULL::VARCHAR AS output,
            NULL::INTEGER AS layer, NULL::FLOAT[] AS vector,
            NULL::TIMESTAMPTZ AS created_at WHERE false"""
        )
    health.warn_left_out(store.root, damaged)


def _windows_view(con: duckdb.DuckDBPyConnection, store: Store, extractor: str
                  ) -> list[health.Damage]:
    """`<view>_windows` over the extractor's window parts, if it has any: only the windows
    of the feature rows its view shows (same key and `created_at`), so windows whose
    feature part was never written (a killed run, redone since) or is quarantined are
    left out, as are two extractions of one track. Returns the damaged parts left out."""
    folder = store.windows_dir / extractor
    files = sorted(folder.glob("*/*.parquet"))
    if not files:
        return []
    name, features = f"{view_name(extractor)}_windows", view_name(extractor)
    parts, damaged = _read_parts(store.root, files, folder / "*")
    if parts is None:
        _empty_view(con, name, schema.WINDOW_KEY_AND_PROVENANCE)
        return damaged
    con.execute(
        f"""CREATE OR REPLACE VIEW {ident(name)} AS
        SELECT * FROM {parts} SEMI JOIN (
            SELECT track_id, config_hash, created_at FROM {ident(features)}) stored
        USING (track_id, config_hash, created_at)"""
    )
    return damaged


def embedding_columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    """The embedding (float array) columns of an extractor view, in stored order."""
    provenance = set(schema.FEATURE_KEY_AND_PROVENANCE.names)
    rows = con.execute(f"DESCRIBE {ident(view)}").fetchall()
    return [name for name, dtype, *_ in rows if name not in provenance and "[" in dtype]


def create_failure_views(con: duckdb.DuckDBPyConnection, store: Store,
                         warn: bool = True) -> list[health.Damage]:
    """Create `failures` and `failures_latest` (each key's newest failure) on `con`: all a
    scan needs, without the per-extractor views, which read every feature part's footer.
    Returns the damaged failure parts left out (and warns about them unless `warn` is off)."""
    damaged = _table_view(con, "failures", store.failures_dir, schema.FAILURES, store.root)
    con.execute(
        """CREATE OR REPLACE VIEW failures_latest AS SELECT * FROM failures
        QUALIFY row_number() OVER (PARTITION BY library, path, stage, config_hash
                                   ORDER BY failed_at DESC, attempts DESC) = 1"""
    )
    if warn:
        health.warn_left_out(store.root, damaged)
    return damaged


def create_run_views(con: duckdb.DuckDBPyConnection, store: Store) -> list[health.Damage]:
    """`runs_history` holds every row of every run (`started`, then `completed`/`failed`);
    `runs` shows each run's newest row, its current state. The end row is the one with a
    `finished_at`, so NULLS LAST puts a `started` row behind it. Returns the damaged parts
    left out."""
    damaged = _table_view(con, "runs_history", store.runs_dir, schema.RUNS, store.root)
    con.execute(
        """CREATE OR REPLACE VIEW runs AS SELECT * FROM runs_history
        QUALIFY row_number() OVER (PARTITION BY run_id
                                   ORDER BY finished_at DESC NULLS LAST) = 1"""
    )
    return damaged


def _table_view(con: duckdb.DuckDBPyConnection, name: str, folder: Path,
                table_schema: pa.Schema, root: Path) -> list[health.Damage]:
    """A view over a folder's parts (an empty one if none is readable); returns the
    damaged parts it leaves out."""
    parts, damaged = _read_parts(root, sorted(folder.glob("*.parquet")), folder)
    if parts is None:
        _empty_view(con, name, table_schema)
    else:
        con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM {parts}")
    return damaged


def _read_parts(root: Path, files: list[Path], folder: Path
                ) -> tuple[str | None, list[health.Damage]]:
    """A `read_parquet(…)` over the readable `files` (None if there are none) and the
    damaged ones. While all are readable it is a glob over `folder` (short SQL, which also
    sees parts written after the check); a damaged file makes it the list of the others."""
    healthy, damaged = health.split_damaged(root, files)
    if not healthy:
        return None, damaged
    if damaged:
        source = "[" + ", ".join(literal(str(p)) for p in healthy) + "]"
    else:
        source = literal(str(folder / "*.parquet"))
    return f"read_parquet({source}, union_by_name = true)", damaged


def _empty_view(con: duckdb.DuckDBPyConnection, name: str, table_schema: pa.Schema) -> None:
    """A view with the table's columns and no rows, written as SQL: registering an empty
    Arrow table instead makes pyarrow import pandas, 0.4 s of `mfs extract` with nothing
    to do (issue 14's 2 s target)."""
    columns = ", ".join(f"NULL::{_duckdb_type(field.type)} AS {ident(field.name)}"
                        for field in table_schema)
    con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT {columns} WHERE false")


_SCALAR_TYPES = {
    pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def _duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type a Parquet column of `arrow_type` reads as (the store's types only)."""
    if pa.types.is_fixed_size_list(arrow_type):
        return f"{_duckdb_type(arrow_type.value_type)}[{arrow_type.list_size}]"
    if pa.types.is_list(arrow_type):
        return f"{_duckdb_type(arrow_type.value_type)}[]"
    if arrow_type not in _SCALAR_TYPES:
        raise TypeError(f"store schema type {arrow_type} has no DuckDB type here")
    return _SCALAR_TYPES[arrow_type]

"""The leaderboard: one Parquet part per benchmark command under `<store>/leaderboard/`.

Parts are written atomically while holding the store lock, and each command also appends
its `runs` rows (kind `benchmark`). Every row carries its full configuration, seed, command,
and library versions, so rerunning `command` on the same store gives the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from mfs.analysis.results import BenchmarkResult
from mfs.analysis.sqlfiles import sql_text
from mfs.store import Store
from mfs.store.provenance import library_versions
from mfs.store.runs import Run, recorded
from mfs.store.schema import LEADERBOARD

if TYPE_CHECKING:
    import duckdb


def append_results(store: Store, results: list[BenchmarkResult]) -> str:
    """Write one leaderboard part for `results` and record the run; returns its run_id."""
    libraries = sorted({r.config.library for r in results})
    run = Run("benchmark", ",".join(libraries),
              sorted({s["extractor"] for r in results for s in r.selections}))
    rows = [_row(result, run.run_id, run.started_at) for result in results]
    table = pa.Table.from_pylist(rows, schema=LEADERBOARD)
    run.counts["entries"] = len(rows)
    with store.writing("benchmark") as writer, recorded(writer, run):
        writer.append_leaderboard(table)
    return run.run_id


def read_leaderboard(store: Store, library: str | None = None, latest: bool = False,
                     con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Every stored row (optionally of one library), newest first; with `latest`, only
    the newest row of each command (a rerun replaces its earlier result). `con`: the
    command's connection to the store, if it has one."""
    con = con or store.connect()
    board = con.sql(sql_text("leaderboard"), params={"library": library}).df()
    return board.drop_duplicates(subset="command", keep="first") if latest else board


def interval_text(value: float, low: float, high: float) -> str:
    """A score and its 95% interval in percent, e.g. "81.2 [77.0, 85.1]"."""
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def row_interval(row, metric: str) -> str:
    """`interval_text` of a leaderboard row's `metric` and its `_low`/`_high` columns."""
    return interval_text(getattr(row, metric), getattr(row, f"{metric}_low"),
                         getattr(row, f"{metric}_high"))


def optional_number(value: float | None) -> str:
    """An optional setting (prune, pca) as text: empty when unset (None or NaN)."""
    return "" if value is None or pd.isna(value) else f"{value:g}"


def _row(result: BenchmarkResult, run_id: str, created_at: datetime) -> dict:
    config = result.config
    row = {
        "run_id": run_id, "created_at": created_at, "library": config.library,
        "feature_set": config.feature_set, "features": list(config.features),
        "selections": json.dumps(result.selections), "ensemble": config.ensemble,
        "model": config.model, "model_params": json.dumps(result.model_params, default=str),
        "prune": config.prune, "pca": config.pca, "split": result.split,
        "folds": len(result.fold_scores), "seed": config.seed, "n_tracks": result.n_tracks,
        "n_train": result.n_train, "n_test": result.n_test,
        "n_features_in": result.n_features_in, "n_features_used": result.n_features_used,
        "ci_method": result.ci_method, "labels": result.labels,
        "confusion": result.confusion.tolist(), "per_genre": json.dumps(result.per_genre),
        "fold_scores": json.dumps(result.fold_scores),
        "feature_importance": json.dumps(result.importance),
        "importance_by_selection": json.dumps(result.importance_by_selection),
        "dropped": json.dumps(result.dropped), "population": json.dumps(result.population),
        "config": config.to_json(),
        "command": replace(config, split=result.split).command(),
        "versions": library_versions(),
        "duration_s": result.duration_s,
    }
    for metric, value in result.scores.items():
        low, high = result.intervals[metric]
        row |= {metric: value, f"{metric}_low": low, f"{metric}_high": high}
    return row

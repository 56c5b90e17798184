"""The leaderboard: one Parquet part per benchmark command under `<store>/leaderboard/`.

Parts are written atomically while holding the store lock, and each command also appends
its `runs` rows (kind `benchmark`). Every row carries its full configuration, seed, command,
and library versions, so rerunning `command` on the same store gives the same numbers.
"""

from __future__ import annotations

import json
import uuid
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
from mfs.store.schema import LEADERBOARD, PREDICTIONS

if TYPE_CHECKING:
    import duckdb


def append_results(store: Store, results: list[BenchmarkResult]) -> str:
    """Write one leaderboard part for `results` and record the run; returns its run_id."""
    libraries = sorted({r.config.library for r in results})
    run = Run("benchmark", ",".join(libraries),
              sorted({s["extractor"] for r in results for s in r.selections}))
    rows = [_row(result, run.run_id, run.started_at) for result in results]
    table = pa.Table.from_pylist(rows, schema=LEADERBOARD)
    predictions = pa.concat_tables(
        [pa.table(result.predictions | {"row_id": [row["row_id"]] * len(
            result.predictions["track_id"])}).select(PREDICTIONS.names).cast(PREDICTIONS)
         for row, result in zip(rows, results, strict=True) if result.predictions]
        or [PREDICTIONS.empty_table()])
    run.counts["entries"] = len(rows)
    with store.writing("benchmark") as writer, recorded(writer, run):
        # Predictions first: a run killed between the two leaves predictions no row names
        # (never read), not a row whose predictions are missing.
        if predictions.num_rows:
            writer.append_predictions(predictions)
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


def spread_text(mean: float, std: float, seeds: int) -> str:
    """Mean ± standard deviation over seeds in percent, e.g. "80.9 ± 1.2 (5 seeds)"; empty
    for a single seed (or a row made before repeats existed)."""
    if pd.isna(seeds) or seeds <= 1:
        return ""
    return f"{100 * mean:.1f} ± {100 * std:.1f} ({int(seeds)} seeds)"


def find_row(board: pd.DataFrame, key: str, like: pd.Series | None = None) -> pd.Series:
    """The leaderboard row named by `key`: a row id or a unique prefix of one, else the
    newest row whose feature set is `key` — among those, one with the model, split and
    seed of `like` first (the row it is to be paired with)."""
    ids = board["row_id"].fillna("")
    by_id = board[ids.str.startswith(key)] if key else board.iloc[:0]
    if len(by_id) > 1:
        raise KeyError(f"row id prefix {key!r} names {len(by_id)} leaderboard rows; give more "
                       "of it")
    if len(by_id) == 1:
        return by_id.iloc[0]
    by_features = board[board["feature_set"] == key]
    if by_features.empty:
        raise KeyError(f"no leaderboard row has id or feature set {key!r} (mfs leaderboard "
                       "lists them)")
    if like is not None:
        same = by_features[(by_features["model"] == like["model"])
                           & (by_features["split"] == like["split"])
                           & (by_features["seed"] == like["seed"])]
        by_features = same if not same.empty else by_features
    return by_features.iloc[0]  # the board is newest first


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
        "row_id": uuid.uuid4().hex, "seeds": config.seeds,
        "seed_scores": json.dumps(result.seed_scores),
        "accuracy_seed_mean": result.seed_spread("accuracy")[0],
        "accuracy_seed_std": result.seed_spread("accuracy")[1],
        "leak": result.leak,
    }
    for metric, value in result.scores.items():
        low, high = result.intervals[metric]
        row |= {metric: value, f"{metric}_low": low, f"{metric}_high": high}
    return row

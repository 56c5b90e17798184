"""Time and peak memory of join → prune → PCA → XGBoost over a synthetic store, DuckDB
path (the analysis code) against the same join done with pandas in memory.

    .venv/bin/python bench/bench_analysis.py                   # 20,000 tracks, a few minutes
    .venv/bin/python bench/bench_analysis.py --tracks 100000   # the issue's size

Three extractors of 1024 + 1024 + 1280 = 3,328 dims, 10 genres, the synthetic split
(60 % train / 20 % validation / 20 % test). The store is written once under bench/out/ and
reused. Each path runs in its own process so its peak RSS (ru_maxrss) is its own. Both
paths hand the same TrainingTable to the same `evaluate`, so they differ only in the join.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mfs.analysis.benchmark import evaluate
from mfs.analysis.results import BenchmarkConfig
from mfs.analysis.selection import resolve_all
from mfs.analysis.training_table import Block, TrainingTable, load_training_table
from mfs.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_store import write_synthetic_library  # noqa: E402  (test-side module)

OUT = Path(__file__).resolve().parent / "out"
DIMS = {"bench-a": 1024, "bench-b": 1024, "bench-c": 1280}
GENRES = tuple(f"genre{i}" for i in range(10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--prune", type=float, default=0.95)
    parser.add_argument("--pca", type=float, default=64)
    parser.add_argument("--paths", default="duckdb,pandas", help="which paths to run")
    parser.add_argument("--path", help=argparse.SUPPRESS)  # child process: run one path
    args = parser.parse_args()
    store = Store(OUT / f"store-{args.tracks}")
    if args.path:
        print(json.dumps(run_path(store, args.path, args.prune, args.pca)))
        return
    ensure_store(store, args.tracks)
    print(f"{args.tracks} tracks x {sum(DIMS.values())} dims, prune {args.prune}, "
          f"pca {args.pca:g}, xgboost; store {store.root}")
    for path in args.paths.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--path", path, "--tracks", str(args.tracks),
             "--prune", str(args.prune), "--pca", str(args.pca)],
            check=True, capture_output=True, text=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{path:7s} join {result['join_s']:6.1f} s (peak RSS {result['join_peak_gib']:.2f} "
              f"GiB)   prune+pca+xgboost {result['model_s']:6.1f} s   total "
              f"{result['total_s']:6.1f} s   peak RSS {result['peak_gib']:.2f} GiB   "
              f"dims used {result['n_features_used']}   accuracy {result['accuracy']:.4f}")


def ensure_store(store: Store, tracks: int) -> None:
    marker = store.root / "bench.json"
    if marker.exists():
        return
    started = time.perf_counter()
    write_synthetic_library(store, "bench", tracks, GENRES, DIMS, separation=0.03, seed=0)
    marker.write_text(json.dumps({"tracks": tracks, "dims": DIMS}))
    print(f"wrote synthetic store in {time.perf_counter() - started:.0f} s")


def run_path(store: Store, path: str, prune: float, pca: float) -> dict:
    started = time.perf_counter()
    join = {"duckdb": lambda: load_training_table(store, "bench", list(DIMS)),
            "pandas": lambda: pandas_join(store)}[path]
    table = join()
    joined, join_peak = time.perf_counter(), peak_gib()
    config = BenchmarkConfig("bench", tuple(DIMS), "xgboost", prune=prune, pca=pca,
                             split="official")
    result = evaluate(table, config)
    done = time.perf_counter()
    return {"join_s": joined - started, "model_s": done - joined, "total_s": done - started,
            "join_peak_gib": join_peak, "peak_gib": peak_gib(),
            "accuracy": result.scores["accuracy"], "n_features_used": result.n_features_used}


def peak_gib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def pandas_join(store: Store) -> TrainingTable:
    """The usual in-memory way: read every part, newest row per track, expand the vector
    column into a wide frame, join on track_id."""
    import pandas as pd

    tracks = pd.read_parquet(store.tracks_dir / "bench.parquet",
                             columns=["track_id", "genre", "split", "artist"])
    wide = tracks.set_index("track_id")
    for extractor, dim in DIMS.items():
        parts = sorted((store.features_dir / extractor).rglob("*.parquet"))
        frame = pd.concat([pd.read_parquet(p, columns=["track_id", "created_at",
                                                       "embedding_mean"]) for p in parts])
        frame = frame.sort_values("created_at").drop_duplicates("track_id", keep="last")
        columns = [f"{extractor}.embedding_mean[{i}]" for i in range(dim)]
        vectors = pd.DataFrame(np.stack(frame["embedding_mean"].to_numpy()),
                               index=frame["track_id"], columns=columns)
        wide = wide.join(vectors, how="inner")
    wide = wide[wide["genre"].notna()].sort_index()
    selections = resolve_all(store, store.connect(), list(DIMS), "bench")
    blocks, start = [], 0
    for selection in selections:
        blocks.append(Block(selection, start, start + selection.dim))
        start += selection.dim
    features = wide.columns[3:]
    return TrainingTable("bench", wide.index.to_numpy(), wide[features].to_numpy(np.float32),
                         list(features), blocks, wide["genre"].to_numpy(object),
                         wide["split"].to_numpy(object), wide["artist"].to_numpy(object))


if __name__ == "__main__":
    main()

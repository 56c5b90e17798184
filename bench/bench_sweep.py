"""The cost of a layer sweep through `mfs bench` against a plain scikit-learn loop.

    .venv/bin/python bench/bench_sweep.py                          # 1,000 tracks, 25 × 1,024
    .venv/bin/python bench/bench_sweep.py --tracks 200 --layers 5  # a quick look

A synthetic store holds one extractor with `--layers` per-layer columns of `--dims` each
(`hidden_lNN_mean`, as MERT-v1-330M stores its 25 layers), 10 genres, the synthetic
official split. The sweep is `bench_configs(…, ["x:layer=all"], ["logreg"])` +
`run_benchmarks` (one store read, one leaderboard row and its predictions per layer, with
bootstrap intervals); the baseline loops over the layers of the same matrices already in
numpy, fitting StandardScaler + LogisticRegression on train and scoring test — what a
notebook does once its arrays are loaded. Both fit the same model on the same rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from mfs.analysis.benchmark import bench_configs, run_benchmarks
from mfs.analysis.training_table import load_training_table
from mfs.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_store import (  # noqa: E402  (test-side module)
    make_library,
    tracks_table,
    write_layered_extractor,
)

OUT = Path(__file__).resolve().parent / "out"
GENRES = tuple(f"genre{i}" for i in range(10))


def build_store(tracks: int, layers: int, dims: int) -> Store:
    store = Store(OUT / f"sweep-{tracks}x{layers}x{dims}")
    if not (store.features_dir / "layered").exists():
        lib = make_library("sweep", tracks, GENRES)
        with store.writing("bench sweep") as writer:
            writer.replace_tracks("sweep", tracks_table(
                "sweep", lib.track_ids, list(lib.genres), list(lib.splits), list(lib.artists)))
        write_layered_extractor(store, lib, "layered", layers=layers, dim=dims,
                                best_layer=layers // 2, separation=0.1)
    return store


def plain_loop(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
               layers: int, dims: int) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = []
    for layer in range(layers):
        columns = slice(layer * dims, (layer + 1) * dims)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
        model.fit(X[train, columns], y[train])
        scores.append(float((model.predict(X[test, columns]) == y[test]).mean()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=25)
    parser.add_argument("--dims", type=int, default=1024)
    args = parser.parse_args()
    store = build_store(args.tracks, args.layers, args.dims)
    print(f"load (uptime): {os.getloadavg()}")

    started, cpu = time.perf_counter(), time.process_time()
    results = run_benchmarks(store, bench_configs("sweep", ["layered:layer=all"], ["logreg"],
                                                  store=store))
    sweep_s, sweep_cpu = time.perf_counter() - started, time.process_time() - cpu

    # The baseline starts from the arrays in memory: its load is timed apart, not counted.
    started = time.perf_counter()
    table = load_training_table(store, "sweep", [f"layered:layer={n}"
                                                 for n in range(args.layers)])
    load_s = time.perf_counter() - started
    y = np.searchsorted(sorted(set(table.genre)), table.genre)
    train, test = np.flatnonzero(table.split == "train"), np.flatnonzero(table.split == "test")
    started, cpu = time.perf_counter(), time.process_time()
    plain = plain_loop(table.X, y, train, test, args.layers, args.dims)
    plain_s, plain_cpu = time.perf_counter() - started, time.process_time() - cpu

    ours = [r.scores["accuracy"] for r in results]
    same = np.allclose(ours, plain)
    best = int(np.argmax(ours))
    print(f"{args.tracks} tracks × {args.layers} layers × {args.dims} dims, logreg, "
          f"official split ({len(train)} train / {len(test)} test)")
    print(f"mfs bench sweep: {sweep_s:.1f} s wall, {sweep_cpu:.1f} s CPU "
          f"({sweep_s / args.layers:.2f} s/layer), "
          f"best layer {best} ({100 * ours[best]:.1f}%)")
    print(f"plain sklearn loop: {plain_s:.1f} s wall, {plain_cpu:.1f} s CPU "
          f"({plain_s / args.layers:.2f} s/layer), from "
          f"arrays in memory (loading them from the store: {load_s:.1f} s)")
    print(f"ratio sweep / plain: {sweep_s / plain_s:.2f}x wall, {sweep_cpu / plain_cpu:.2f}x "
          f"CPU; same accuracies: {same}")


if __name__ == "__main__":
    main()

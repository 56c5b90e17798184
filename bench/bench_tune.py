"""The cost of `mfs bench --tune` against one untuned fit, per model.

    .venv/bin/python bench/bench_tune.py                          # logreg, svm, probe, mlp
    .venv/bin/python bench/bench_tune.py --models xgboost

A synthetic store of 1,000 tracks × 1,024 float32 dims (one extractor), 10 genres, the
synthetic split (60 % train / 20 % validation / 20 % test), written once under bench/out/.
Each model is benchmarked untuned and tuned on the same loaded table through `evaluate`
(what `mfs bench` runs after the join): the tuned entry scores every grid candidate on the
validation part, then refits the winner on train + validation. Prints the load average
before and after, since the development VM is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mfs.analysis.benchmark import evaluate
from mfs.analysis.probe import ProbeClassifier
from mfs.analysis.results import BenchmarkConfig
from mfs.analysis.training_table import load_training_table
from mfs.analysis.tuning import candidates
from mfs.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_store import write_synthetic_library  # noqa: E402  (test-side module)

OUT = Path(__file__).resolve().parent / "out"
GENRES = tuple(f"genre{i}" for i in range(10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--models", default="logreg,svm,probe,mlp")
    args = parser.parse_args()
    store = Store(OUT / f"store-tune-{args.tracks}x{args.dims}")
    if not (store.root / "tracks").exists():
        write_synthetic_library(store, "synth", args.tracks, GENRES, {"wide": args.dims},
                                separation=0.15)
    table = load_training_table(store, "synth", ["wide"])
    print(f"{args.tracks} tracks x {args.dims} dims, 10 genres, official split; "
          f"load average {os.getloadavg()[0]:.2f}")
    # Imports and first-call set-up (torch's above all) are not the cost of tuning.
    evaluate(table, BenchmarkConfig("synth", ("wide",), "logreg"))
    ProbeClassifier(max_epochs=1).fit(table.X[:50], table.genre[:50])
    print("| model | grid | untuned | tuned | ratio | accuracy untuned → tuned | chosen |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        plain = _timed(table, model, False)
        tuned = _timed(table, model, True)
        chosen = tuned[1].model_params["tuning"]["chosen"][0]
        print(f"| {model} | {len(candidates(model))} | {plain[0]:.1f} s | {tuned[0]:.1f} s | "
              f"{tuned[0] / plain[0]:.1f}x | {plain[1].scores['accuracy']:.3f} → "
              f"{tuned[1].scores['accuracy']:.3f} | {chosen} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def _timed(table, model: str, tune: bool):
    started = time.perf_counter()
    result = evaluate(table, BenchmarkConfig("synth", ("wide",), model, tune=tune))
    return time.perf_counter() - started, result


if __name__ == "__main__":
    main()

"""A one-call benchmark for tests: one feature set, one model (the CLI's `bench_configs`
builds the configurations of a whole `mfs bench` command instead)."""

from __future__ import annotations

from mfs.analysis.benchmark import run_benchmarks
from mfs.analysis.results import BenchmarkConfig, BenchmarkResult
from mfs.analysis.selection import split_specs
from mfs.store import Store


def run_benchmark(store: Store, library: str, features: list[str] | str,
                  model: str = "xgboost", prune: float | None = None,
                  pca: float | None = None, split: str = "auto", seed: int = 0,
                  ensemble: str = "concat", folds: int = 5, save: bool = True,
                  prompts: str | None = None, tune: bool = False) -> BenchmarkResult:
    """Benchmark one feature set (`"a+b"` or a list of specs); see `run_benchmarks`."""
    specs = split_specs(features, "+") if isinstance(features, str) else list(features)
    config = BenchmarkConfig(library, tuple(specs), model, ensemble, prune, pca, split,
                             folds, seed, prompts, tune=tune)
    return run_benchmarks(store, [config], save=save)[0]

"""Analysis over the feature store: statistics, training tables, benchmarks, exports, reports.

Everything reads the store through its DuckDB views (`Store.connect()`); what SQL says best
(joins, semi-joins, per-dimension statistics) lives in `analysis/sql/*.sql`. Models are
scikit-learn pipelines whose every step is fitted on the training split only.

Modules, by job:
- `selection`: `extractor[@config][:column]` specs → stored columns and dimension names
- `stats`: per-dimension statistics; `training_table`: the wide join of several selections
- `feature_files`, `importing`: external CSV/Parquet/.npz features → a new extractor
- `preprocessing`, `models`, `predictors`: pruning/PCA, classifiers, concat/vote ensembles
- `splits`, `metrics`, `results`, `benchmark`, `zero_shot`: protocols and scores
- `population`: the label and track filters of a benchmark or export
- `leakage`: splits known to leak; `compare`: paired tests of two leaderboard rows
- `leaderboard`: the stored results; `export` (`training_data`: the exported table in
  memory, which `mfs.api`'s `training_table` returns), `report`/`plots`: outputs for people

For notebooks, `from mfs import open_store` (`mfs/api.py`) is the short way in.

From Python, a population is a `Population` handed to `bench_configs`, `export` or
`load_training_table` (the CLI's `--label/--subset/--genres/--exclude-genres/--where/
--min-per-genre`), e.g.

    from mfs.analysis import Population
    from mfs.analysis.benchmark import bench_configs, run_benchmarks
    fma = Population(subset="medium", exclude_genres=("International",), min_per_genre=1000)
    run_benchmarks(store, bench_configs("fma-medium", ["fma518"], ["xgboost"],
                                        population=fma, class_weight="balanced"))
"""

from mfs.analysis.population import Population

__all__ = ["Population"]

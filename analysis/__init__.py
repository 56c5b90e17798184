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
- `leaderboard`: the stored results; `export`, `report`/`plots`: outputs for people
"""

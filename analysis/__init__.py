"""Analysis over the feature store: statistics, training tables, benchmarks, exports, reports.

Everything reads the store through its DuckDB views (`Store.connect()`); heavy lifting that
SQL says best (joins, anti-joins, per-dimension statistics) lives in `analysis/sql/*.sql`.
Models are scikit-learn pipelines whose every step is fitted on the training split only.
"""

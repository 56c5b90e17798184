"""music feature store: offline batch embeddings on a Parquet + DuckDB feature store."""

"""Arrow schemas of the store's tables. `store/SCHEMA.md` explains each column."""

from __future__ import annotations

import pyarrow as pa

TRACK_STATUSES = ("ok", "unreadable", "missing")

TRACKS = pa.schema(
    [
        ("track_id", pa.string()),
        ("library", pa.string()),
        ("library_kind", pa.string()),
        ("library_root", pa.string()),
        ("path", pa.string()),
        ("format", pa.string()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("file_size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("fingerprint", pa.string()),
        ("genre", pa.string()),
        ("genres", pa.list_(pa.string())),
        ("genre_levels", pa.list_(pa.int32())),
        ("split", pa.string()),
        ("subset", pa.string()),
        ("artist", pa.string()),
        ("artist_id", pa.string()),
        ("album", pa.string()),
        ("title", pa.string()),
        ("status", pa.string()),
        ("status_reason", pa.string()),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
    ]
)

FAILURES = pa.schema(
    [
        ("track_id", pa.string()),
        ("library", pa.string()),
        ("path", pa.string()),
        ("stage", pa.string()),
        ("config_hash", pa.string()),
        ("error_class", pa.string()),
        ("reason", pa.string()),
        ("attempts", pa.int32()),
        ("failed_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),
        ("library", pa.string()),
        ("extractors", pa.list_(pa.string())),
        ("status", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("counts", pa.string()),
        ("versions", pa.string()),
        ("command", pa.string()),
        ("reason", pa.string()),
        ("pid", pa.int64()),
        ("host", pa.string()),
    ]
)

# Columns every feature row has besides its embedding columns (fixed-size float32 lists).
FEATURE_KEY_AND_PROVENANCE = pa.schema(
    [
        ("track_id", pa.string()),
        ("extractor", pa.string()),
        ("config_hash", pa.string()),
        ("config", pa.string()),
        ("n_windows", pa.int32()),
        ("seconds", pa.float64()),
        ("model_hash", pa.string()),
        ("precision", pa.string()),
        ("versions", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)

# Columns every window row (`windows/`, a config with keep_windows) has besides its
# per-window vectors: a feature row's provenance, with `created_at` equal to the feature
# row's (which is how the `<extractor>_windows` view keeps only the windows of stored rows).
WINDOW_KEY_AND_PROVENANCE = pa.schema(
    [
        ("track_id", pa.string()),
        ("extractor", pa.string()),
        ("config_hash", pa.string()),
        ("config", pa.string()),
        ("window", pa.int32()),
        ("start_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("model_hash", pa.string()),
        ("precision", pa.string()),
        ("versions", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)


# One row per benchmark entry (analysis/leaderboard.py writes it; SCHEMA.md explains it).
LEADERBOARD = pa.schema([
    ("run_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("library", pa.string()),
    ("feature_set", pa.string()),
    ("features", pa.list_(pa.string())),
    ("selections", pa.string()),
    ("ensemble", pa.string()),
    ("model", pa.string()),
    ("model_params", pa.string()),
    ("prune", pa.float64()),
    ("pca", pa.float64()),
    ("split", pa.string()),
    ("folds", pa.int32()),
    ("seed", pa.int64()),
    ("n_tracks", pa.int32()),
    ("n_train", pa.int32()),
    ("n_test", pa.int32()),
    ("n_features_in", pa.int32()),
    ("n_features_used", pa.int32()),
    ("accuracy", pa.float64()),
    ("accuracy_low", pa.float64()),
    ("accuracy_high", pa.float64()),
    ("balanced_accuracy", pa.float64()),
    ("balanced_accuracy_low", pa.float64()),
    ("balanced_accuracy_high", pa.float64()),
    ("macro_f1", pa.float64()),
    ("macro_f1_low", pa.float64()),
    ("macro_f1_high", pa.float64()),
    ("ci_method", pa.string()),
    ("labels", pa.list_(pa.string())),
    ("confusion", pa.list_(pa.list_(pa.int64()))),
    ("per_genre", pa.string()),
    ("fold_scores", pa.string()),
    ("feature_importance", pa.string()),
    ("importance_by_selection", pa.string()),
    ("dropped", pa.string()),
    ("population", pa.string()),
    ("config", pa.string()),
    ("command", pa.string()),
    ("versions", pa.string()),
    ("duration_s", pa.float64()),
    ("row_id", pa.string()),
    ("seeds", pa.int32()),
    ("seed_scores", pa.string()),
    ("accuracy_seed_mean", pa.float64()),
    ("accuracy_seed_std", pa.float64()),
    ("leak", pa.string()),
])

# Every test prediction behind a leaderboard row, for paired comparisons (`mfs compare`).
PREDICTIONS = pa.schema([
    ("row_id", pa.string()),
    ("track_id", pa.string()),
    ("truth", pa.string()),
    ("predicted", pa.string()),
    ("fold", pa.string()),
    ("seed", pa.int64()),
])

# Text-prompt embeddings of a joint audio/text extractor (CLAP), one row per prompt, under
# prompts/<extractor>/<config_hash>/ (analysis/prompts.py writes it; SCHEMA.md explains it).
PROMPTS = pa.schema([
    ("extractor", pa.string()),
    ("config_hash", pa.string()),
    ("genre", pa.string()),
    ("template", pa.string()),
    ("prompt", pa.string()),
    ("embedding", pa.list_(pa.float32())),
    ("model_hash", pa.string()),
    ("tokenizer_hash", pa.string()),
    ("versions", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])

# Parquet schema-metadata key of a feature part: JSON {column: [name per dimension]}.
FEATURE_NAMES_KEY = b"mfs.feature_names"
# Parquet schema-metadata key of a feature part: JSON {output: number of layers}, for the
# outputs stored per layer (`<output>_l<NN>_<stat>`, store/columns.py).
LAYERS_KEY = b"mfs.layers"


def embedding_type(dim: int) -> pa.DataType:
    """Arrow type of one stored embedding: a fixed-size float32 list (DuckDB `FLOAT[dim]`)."""
    return pa.list_(pa.float32(), dim)

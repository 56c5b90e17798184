"""Build feature batches in the store's row format (SCHEMA.md) from NumPy matrices.

Used by the importer and by the synthetic stores of tests and benchmarks, so every
writer outside `extractors/` produces exactly the rows an extractor would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from mfs.store.provenance import config_hash, library_versions
from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE, FEATURE_NAMES_KEY, embedding_type


def feature_table(extractor: str, config: dict, track_ids: list[str],
                  columns: dict[str, np.ndarray], *, model_hash: str, run_id: str,
                  n_windows: np.ndarray | None = None,
                  feature_names: dict[str, list[str]] | None = None) -> pa.Table:
    """One batch: key and provenance columns plus one float32 list column per matrix."""
    n = len(track_ids)
    provenance = {
        "track_id": track_ids,
        "extractor": [extractor] * n,
        "config_hash": [config_hash(extractor, config)] * n,
        "config": [json.dumps(config, sort_keys=True)] * n,
        "n_windows": n_windows if n_windows is not None else [None] * n,
        "seconds": [None] * n,
        "model_hash": [model_hash] * n,
        "versions": [library_versions()] * n,
        "created_at": [datetime.now(UTC)] * n,
        "run_id": [run_id] * n,
    }
    table = pa.table(provenance, schema=FEATURE_KEY_AND_PROVENANCE)
    for name, matrix in columns.items():
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.shape[0] != n:
            raise ValueError(f"column {name!r} has {matrix.shape[0]} rows for {n} track ids")
        values = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])
        table = table.append_column(pa.field(name, embedding_type(matrix.shape[1])), values)
    if feature_names:
        table = table.replace_schema_metadata(
            {FEATURE_NAMES_KEY: json.dumps(feature_names).encode()})
    return table

"""The one builder of feature batches in the store's row format (SCHEMA.md, `features/`),
and of the per-window batches of configs that keep windows (`windows/`).

Extraction (`extractors/pipeline.py`, row by row as tracks finish) and imports of
published features (`analysis/importing.py`, whole matrices at once) both build their
batches here, so every writer produces the same key and provenance columns, the same
column types and the same `mfs.feature_names` schema metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from mfs.store.columns import layer_counts
from mfs.store.provenance import FIRST_VERSION, config_hash, library_versions
from mfs.store.schema import (
    FEATURE_KEY_AND_PROVENANCE,
    FEATURE_NAMES_KEY,
    LAYERS_KEY,
    WINDOW_KEY_AND_PROVENANCE,
    embedding_type,
)


def feature_schema(dims: dict[str, int],
                   feature_names: dict[str, list[str]] | None = None) -> pa.Schema:
    """Key and provenance columns, then one float32 list column per stored column in order;
    the per-dimension names and the layer counts of per-layer outputs go into the schema
    metadata only when there are some, so readers need not parse column names."""
    return embedding_schema(FEATURE_KEY_AND_PROVENANCE, dims, feature_names,
                            layer_counts(list(dims)))


def embedding_schema(key: pa.Schema, dims: dict[str, int],
                     feature_names: dict[str, list[str]] | None,
                     layers: dict[str, int]) -> pa.Schema:
    """`key` columns, then the vector columns, with names and layers in the metadata (as
    `feature_schema`); window columns carry no statistic, so their layers are given."""
    fields = list(key)
    fields += [pa.field(column, embedding_type(dim)) for column, dim in dims.items()]
    metadata = {}
    if feature_names:
        metadata[FEATURE_NAMES_KEY] = json.dumps(feature_names).encode()
    if layers:
        metadata[LAYERS_KEY] = json.dumps(layers).encode()
    return pa.schema(fields, metadata=metadata or None)


def _repeated(value: object, n: int, arrow_type: pa.DataType) -> pa.Array:
    """One value for each of `n` rows (a batch's provenance)."""
    return pa.array([value] * n, arrow_type)


def _vectors(name: str, matrix: np.ndarray, n: int, dim: int) -> pa.Array:
    """An (n × dim) matrix as one fixed-size float32 list per row, without a Python object
    per value; a ValueError names the column whose shape is wrong."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.shape != (n, dim):
        raise ValueError(f"column {name!r} has shape {matrix.shape} for {n} rows "
                         f"of {dim} dimensions")
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim)


class FeatureRows:
    """Feature batches of one output (extractor + config) written by one run.

    `dims` names the stored columns, in stored order, with their sizes; `feature_names`
    maps some of them to one name per dimension; `code` is the extractor's code version
    (`Extractor.code_version`), part of the config hash; `precision` is the float type the
    model ran under (`none`: no model, or imported features).
    """

    def __init__(self, extractor: str, config: dict, dims: dict[str, int], *,
                 model_hash: str, run_id: str,
                 feature_names: dict[str, list[str]] | None = None,
                 code: int | str = FIRST_VERSION, precision: str = "none") -> None:
        self.constant = {
            "extractor": extractor,
            "config_hash": config_hash(extractor, config, code),
            "config": json.dumps(config, sort_keys=True),
            "model_hash": model_hash,
            "precision": precision,
            "versions": library_versions(),
            "run_id": run_id,
        }
        self.dims = dict(dims)
        self.schema = feature_schema(self.dims, feature_names)

    def row(self, track_id: str, vectors: dict[str, np.ndarray], *, n_windows: int | None,
            seconds: float | None) -> dict:
        """One track's row, stamped now; `vectors` holds one vector per stored column."""
        return {"track_id": track_id, "n_windows": n_windows, "seconds": seconds,
                "created_at": datetime.now(UTC), **self.constant, **vectors}

    def table(self, rows: list[dict]) -> pa.Table:
        """A batch of rows made by `row`."""
        return pa.Table.from_pylist(rows, schema=self.schema)

    def from_matrices(self, track_ids: Sequence[str], matrices: dict[str, np.ndarray],
                      n_windows: np.ndarray | None = None) -> pa.Table:
        """A batch from one (tracks × dim) matrix per stored column, without a Python
        object per value (imports hold thousands of tracks at once); `seconds` is null."""
        n = len(track_ids)
        if set(matrices) != set(self.dims):
            raise ValueError(f"columns {sorted(matrices)} differ from {sorted(self.dims)}")
        columns = {
            "track_id": pa.array(track_ids, pa.string()),
            "n_windows": pa.array(n_windows if n_windows is not None else [None] * n,
                                  pa.int32()),
            "seconds": pa.nulls(n, pa.float64()),
            "created_at": _repeated(datetime.now(UTC), n, pa.timestamp("us", tz="UTC")),
        }
        for name, value in self.constant.items():
            columns[name] = _repeated(value, n, pa.string())
        for name, dim in self.dims.items():
            columns[name] = _vectors(name, matrices[name], n, dim)
        return pa.Table.from_arrays([columns[field.name] for field in self.schema],
                                    schema=self.schema)


class WindowRows:
    """Per-window batches (SCHEMA.md, `windows/`) of the output whose feature rows
    `features` builds: the same provenance values, so a track's windows and its feature
    row name the same config, model, precision and run.

    `dims` names the window columns (`<output>` or `<output>_l<NN>`, no statistic) with
    their sizes; `layers` counts the layers of per-layer outputs (`mfs.layers`).
    """

    def __init__(self, features: FeatureRows, dims: dict[str, int], *,
                 layers: dict[str, int],
                 feature_names: dict[str, list[str]] | None = None) -> None:
        self.constant = features.constant
        self.dims = dict(dims)
        self.schema = embedding_schema(WINDOW_KEY_AND_PROVENANCE, self.dims, feature_names,
                                       layers)

    def table(self, track_id: str, created_at: datetime, starts_s: np.ndarray,
              durations_s: np.ndarray, vectors: dict[str, np.ndarray]) -> pa.Table:
        """One track's windows in order: `created_at` is its feature row's (the
        `_windows` view pairs them by it), `vectors` one (windows × dim) matrix per column."""
        n = len(starts_s)
        columns = {
            "track_id": _repeated(track_id, n, pa.string()),
            "window": pa.array(np.arange(n, dtype=np.int32)),
            "start_s": pa.array(np.asarray(starts_s, dtype=np.float64)),
            "duration_s": pa.array(np.asarray(durations_s, dtype=np.float64)),
            "created_at": _repeated(created_at, n, pa.timestamp("us", tz="UTC")),
        }
        for name, value in self.constant.items():
            columns[name] = _repeated(value, n, pa.string())
        for name, dim in self.dims.items():
            columns[name] = _vectors(name, vectors[name], n, dim)
        return pa.Table.from_arrays([columns[field.name] for field in self.schema],
                                    schema=self.schema)


def feature_table(extractor: str, config: dict, track_ids: Sequence[str],
                  matrices: dict[str, np.ndarray], *, model_hash: str, run_id: str,
                  n_windows: np.ndarray | None = None,
                  feature_names: dict[str, list[str]] | None = None) -> pa.Table:
    """One batch from (tracks × dim) matrices, for writers that hold whole matrices
    (imports, and the synthetic stores of tests and benchmarks)."""
    dims = {name: int(np.shape(matrix)[1]) for name, matrix in matrices.items()}
    rows = FeatureRows(extractor, config, dims, model_hash=model_hash, run_id=run_id,
                       feature_names=feature_names)
    return rows.from_matrices(track_ids, matrices, n_windows)

"""Read external feature files into per-track matrices, ready to import.

- A table (CSV or Parquet) has one row per track: an id column plus numeric feature
  columns, read whole as one `<output>` matrix with the column names as feature names.
  FMA's `features.csv` (three header rows) is read as such a table, its columns named
  "feature/statistic/number" like `fma518`'s, so the two compare column by column.
- An `.npz` holds per-window features (`X`: windows × dims, plus an id per window), pooled
  per track into `<output>_<stat>` matrices (mean and max by default).

`settings` records how a file was read; it becomes the imported extractor's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfs.extractors.pooling import POOLING_STATS, pool_by_id
from mfs.store.columns import column_name
from mfs.store.store import check_name

ID_COLUMNS = ("track_id", "filename", "file", "path", "id", "IDS", "ids")
WINDOW_KEYS = ("X", "x", "features", "embeddings")
FMA_HEADER = ("feature", "statistics", "number")  # first cells of features.csv's header rows


@dataclass
class Imported:
    """One file's features, per track id as written in the file."""

    path: Path
    ids: list[str]
    columns: dict[str, np.ndarray]
    n_windows: np.ndarray | None
    feature_names: list[str] | None
    settings: dict


def read_features(path: Path, id_column: str | None, output: str,
                  pooling: tuple[str, ...], exclude: tuple[str, ...]) -> Imported:
    """Read one table or `.npz` file into per-track matrices (pooling windows)."""
    check_name("output", output)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_windows(path, id_column, output, pooling)
    if suffix in (".csv", ".parquet"):
        return _read_table(path, id_column, output, exclude)
    raise ValueError(f"{path}: cannot import {suffix or 'files without suffix'}; "
                     "use .csv, .parquet or .npz")


def _read_table(path: Path, id_column: str | None, output: str,
                exclude: tuple[str, ...]) -> Imported:
    if path.suffix.lower() == ".csv":
        from pyarrow import csv

        names = fma_header_names(path)
        table = csv.read_csv(path) if names is None else csv.read_csv(
            path, read_options=csv.ReadOptions(skip_rows=len(FMA_HEADER) + 1,
                                               column_names=["track_id", *names]))
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    id_column = _pick_id(path, table.column_names, id_column)
    numeric, skipped = [], []
    for column in table.column_names:
        if column == id_column or column in exclude:
            continue
        kind = table.schema.field(column).type
        (numeric if pa.types.is_integer(kind) or pa.types.is_floating(kind)
         else skipped).append(column)
    if not numeric:
        raise ValueError(f"{path}: no numeric feature columns besides {id_column!r}")
    X = np.column_stack([pc.cast(table.column(c), pa.float64()).to_numpy(zero_copy_only=False)
                         for c in numeric]).astype(np.float32)
    settings = {"importer": "table", "id_column": id_column, "output": output,
                "feature_columns": numeric, "skipped_columns": skipped,
                "excluded_columns": sorted(exclude)}
    return Imported(path, _id_strings(table.column(id_column)), {output: X}, None, numeric,
                    settings)


def fma_header_names(path: Path) -> list[str] | None:
    """Column names of a table in the layout of FMA's features.csv, else None.

    That file has three header rows (feature, statistics, number) and a fourth naming the
    index (`track_id`); its columns become "feature/statistic/number", e.g.
    "chroma_cens/kurtosis/01", the names `fma518` gives the same values.
    """
    import csv
    from itertools import islice

    with path.open(newline="", encoding="utf-8", errors="replace") as file:
        rows = list(islice(csv.reader(file), len(FMA_HEADER)))
    if tuple(row[0] if row else "" for row in rows) != FMA_HEADER:
        return None
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"{path}: FMA header rows have different lengths")
    return ["/".join(parts) for parts in zip(*(row[1:] for row in rows), strict=True)]


def _read_windows(path: Path, id_key: str | None, output: str,
                  pooling: tuple[str, ...]) -> Imported:
    unknown = sorted(set(pooling) - set(POOLING_STATS))
    if unknown or not pooling:
        raise ValueError(f"pooling must be some of {', '.join(POOLING_STATS)}, got {pooling}")
    with np.load(path, allow_pickle=False) as data:
        id_key = _pick_id(path, data.files, id_key)
        x_key = next((k for k in WINDOW_KEYS if k in data.files), None)
        if x_key is None:
            raise ValueError(f"{path}: no window features (one of {', '.join(WINDOW_KEYS)}) "
                             f"among {', '.join(data.files)}")
        windows, ids = data[x_key], data[id_key]
    if windows.ndim != 2 or len(ids) != len(windows):
        raise ValueError(f"{path}: {x_key} must be windows × dims with one {id_key} per "
                         f"window, got {windows.shape} and {len(ids)} ids")
    unique, pooled, counts = pool_by_id(ids.astype(str), windows, pooling)
    settings = {"importer": "npz", "id_column": id_key, "window_key": x_key,
                "output": output, "pooling": list(pooling), "dims": int(windows.shape[1])}
    return Imported(path, unique, {column_name(output, s): m for s, m in pooled.items()}, counts,
                    None, settings)


def _pick_id(path: Path, columns: list[str], wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise KeyError(f"{path}: no id column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for candidate in ID_COLUMNS:
        if candidate in columns:
            return candidate
    raise KeyError(f"{path}: no id column found (tried {', '.join(ID_COLUMNS)}); "
                   "name it with --id-column")


def _id_strings(column: pa.ChunkedArray) -> list[str]:
    """Ids as text; whole-number floats (FMA ids read as 2.0) lose their `.0`."""
    if pa.types.is_floating(column.type):
        return [str(int(v)) if v is not None and float(v).is_integer() else str(v)
                for v in column.to_pylist()]
    return [str(v) for v in column.to_pylist()]

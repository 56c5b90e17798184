"""Import an external feature table into the store as its own extractor.

Two shapes are understood:
- a table (CSV or Parquet) with one row per track: an id column plus numeric feature
  columns, stored whole as one `<output>` column with the column names as feature names;
- an `.npz` of per-window features (`X`: windows × dims, plus an id per window), pooled
  per track into `<output>_<stat>` columns (mean and max by default).

Ids are matched to the library's tracks by track_id, by the key after `<library>:`, or by
path/file name with or without its audio extension (`blues.00000.wav` → `gtzan:blues.00000`).
Rows that match no track are skipped and counted. Every row carries provenance:
config_hash of the import settings, model_hash = sha256 of the file it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mfs.analysis.feature_rows import config_hash, feature_table
from mfs.store import Store
from mfs.store.provenance import library_versions
from mfs.store.store import StoreWriter, check_name
from mfs.store.views import view_name

ID_COLUMNS = ("track_id", "filename", "file", "path", "id", "IDS", "ids")
WINDOW_KEYS = ("X", "x", "features", "embeddings")
POOLING = ("mean", "max", "min", "std")
ROWS_PER_PART = 10_000
AUDIO_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")


@dataclass
class Imported:
    """One file's features, per track id as written in the file."""

    path: Path
    ids: list[str]
    columns: dict[str, np.ndarray]
    n_windows: np.ndarray | None
    feature_names: list[str] | None
    settings: dict


@dataclass
class ImportSummary:
    extractor: str
    config_hash: str
    library: str
    files: list[str]
    rows: int = 0
    written: int = 0
    already_stored: int = 0
    unmatched: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    skipped_columns: list[str] = field(default_factory=list)
    columns: dict[str, int] = field(default_factory=dict)


def import_features(store: Store, files: list[Path], name: str, library: str,
                    id_column: str | None = None, output: str = "features",
                    pooling: tuple[str, ...] = ("mean", "max"),
                    exclude: tuple[str, ...] = ()) -> ImportSummary:
    """Import `files` as extractor `name` for `library`; see the module docstring."""
    check_name("extractor", name)
    tracks = store.read_tracks(library)
    if tracks.num_rows == 0:
        raise KeyError(f"library {library!r} has no tracks in {store.root}; scan it first")
    if not files:
        raise ValueError("no files to import")
    loaded = [read_features(Path(f), id_column, output, pooling, exclude) for f in files]
    config = loaded[0].settings
    if any(item.settings != config for item in loaded[1:]):
        raise ValueError("files imported together must have the same layout and columns")
    summary = ImportSummary(name, config_hash(name, config), library,
                            [str(f) for f in files],
                            skipped_columns=config.get("skipped_columns", []),
                            columns={c: m.shape[1] for c, m in loaded[0].columns.items()})
    matcher = TrackMatcher(library, tracks)
    stored = _stored_pairs(store, name, summary.config_hash)
    run_id, started = uuid.uuid4().hex, datetime.now(UTC)
    with store.writing(f"import {name}") as writer:
        for item in loaded:
            _write_file(writer, item, config, summary, matcher, stored, run_id)
        writer.append_run({
            "run_id": run_id, "kind": "import", "library": library, "extractors": [name],
            "status": "completed", "started_at": started, "finished_at": datetime.now(UTC),
            "counts": json.dumps({"rows": summary.rows, "written": summary.written,
                                  "already_stored": summary.already_stored,
                                  "unmatched": summary.unmatched}),
            "versions": library_versions(), "command": " ".join(sys.argv),
        })
    return summary


def _write_file(writer: StoreWriter, item: Imported, config: dict, summary: ImportSummary,
                matcher: TrackMatcher, stored: set[tuple[str, str]], run_id: str) -> None:
    """Append one file's matched, not yet stored rows in parts of ROWS_PER_PART."""
    digest = sha256_file(item.path)
    rows, track_ids = [], []
    for row, raw in enumerate(item.ids):
        track_id = matcher.match(raw)
        if track_id is None:
            summary.unmatched += 1
            if len(summary.unmatched_examples) < 5:
                summary.unmatched_examples.append(raw)
        elif (track_id, digest) in stored:
            summary.already_stored += 1
        else:
            rows.append(row)
            track_ids.append(track_id)
    _check_unique(track_ids, item.path)
    names = {c: item.feature_names for c in item.columns} if item.feature_names else None
    for start in range(0, len(rows), ROWS_PER_PART):
        part = np.asarray(rows[start:start + ROWS_PER_PART])
        batch = feature_table(
            summary.extractor, config, track_ids[start:start + ROWS_PER_PART],
            {c: m[part] for c, m in item.columns.items()}, model_hash=digest, run_id=run_id,
            n_windows=None if item.n_windows is None else item.n_windows[part],
            feature_names=names)
        writer.append_features(summary.extractor, summary.config_hash, batch)
    summary.rows += len(item.ids)
    summary.written += len(rows)


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

        table = csv.read_csv(path)
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


def _read_windows(path: Path, id_key: str | None, output: str,
                  pooling: tuple[str, ...]) -> Imported:
    unknown = sorted(set(pooling) - set(POOLING))
    if unknown or not pooling:
        raise ValueError(f"pooling must be some of {', '.join(POOLING)}, got {pooling}")
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
    unique, pooled, counts = pool_windows(ids.astype(str), windows.astype(np.float32), pooling)
    settings = {"importer": "npz", "id_column": id_key, "window_key": x_key,
                "output": output, "pooling": list(pooling), "dims": int(windows.shape[1])}
    return Imported(path, unique, {f"{output}_{s}": m for s, m in pooled.items()}, counts,
                    None, settings)


def pool_windows(ids: np.ndarray, windows: np.ndarray, pooling: tuple[str, ...]
                 ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Per distinct id (sorted): each pooling statistic over its windows, and the count."""
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    grouped = windows[order]
    mean = np.add.reduceat(grouped, starts, axis=0) / counts[:, None]
    stats = {
        "mean": lambda: mean,
        "max": lambda: np.maximum.reduceat(grouped, starts, axis=0),
        "min": lambda: np.minimum.reduceat(grouped, starts, axis=0),
        "std": lambda: np.sqrt(np.maximum(
            np.add.reduceat(grouped ** 2, starts, axis=0) / counts[:, None] - mean ** 2, 0)),
    }
    return list(unique), {s: stats[s]().astype(np.float32) for s in pooling}, counts


class TrackMatcher:
    """Maps the ids written in external files onto a library's track_ids."""

    def __init__(self, library: str, tracks: pa.Table) -> None:
        self.library = library
        self.index: dict[str, str] = {}
        for track_id, path in zip(tracks.column("track_id").to_pylist(),
                                  tracks.column("path").to_pylist(), strict=True):
            self.index[track_id] = track_id
            self.index.setdefault(track_id.partition(":")[2], track_id)
            if path:
                self.index.setdefault(path, track_id)

    def match(self, raw: str) -> str | None:
        name = PurePosixPath(raw.replace("\\", "/")).name
        for candidate in (raw, name, AUDIO_SUFFIX.sub("", name)):
            if candidate in self.index:
                return self.index[candidate]
        return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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


def _check_unique(track_ids: list[str], path: Path) -> None:
    if len(set(track_ids)) != len(track_ids):
        seen: set[str] = set()
        twice = next(t for t in track_ids if t in seen or seen.add(t))
        raise ValueError(f"{path}: several rows map to track {twice}; one row per track "
                         "(use an .npz of windows to pool several)")


def _stored_pairs(store: Store, name: str, config: str) -> set[tuple[str, str]]:
    """(track_id, model_hash) already stored for this import config (re-imports skip them)."""
    if name not in store.extractors():
        return set()
    rows = store.connect().execute(
        f'SELECT track_id, model_hash FROM "{view_name(name)}" WHERE config_hash = $h',
        {"h": config}).fetchall()
    return set(rows)

"""Import an external feature table into the store as its own extractor.

Files are read by `mfs.analysis.feature_files` (CSV/Parquet tables with one row per track,
or `.npz` windows pooled per track).

Ids are matched to the library's tracks by track_id, by the key after `<library>:`, or by
path/file name with or without its audio extension (`blues.00000.wav` → `gtzan:blues.00000`).
Rows that match no track are skipped and counted. Every row carries provenance:
config_hash of the import settings, model_hash = sha256 of the file it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa

from mfs.analysis.feature_files import Imported, read_features
from mfs.store import Store
from mfs.store.feature_rows import feature_table
from mfs.store.provenance import config_hash, file_sha256
from mfs.store.runs import Run, recorded
from mfs.store.store import StoreWriter, check_name
from mfs.store.views import view_name

ROWS_PER_PART = 10_000
AUDIO_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")


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
    run = Run("import", library, [name])
    with store.writing(f"import {name}") as writer, recorded(writer, run):
        for item in loaded:
            _write_file(writer, item, config, summary, matcher, stored, run.run_id)
        run.counts.update(rows=summary.rows, written=summary.written,
                          already_stored=summary.already_stored, unmatched=summary.unmatched)
    return summary


def _write_file(writer: StoreWriter, item: Imported, config: dict, summary: ImportSummary,
                matcher: TrackMatcher, stored: set[tuple[str, str]], run_id: str) -> None:
    """Append one file's matched, not yet stored rows in parts of ROWS_PER_PART."""
    digest = file_sha256(item.path)
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

"""Scanning a library into the store's `tracks` table.

Plain functions, no Prefect import: `mfs scan` and the rescan before an extract stay
fast. Inside the flow `extract-library`, `run_scan` is its first task (`scan LIBRARY`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfs.libraries import registry
from mfs.libraries.scan import scan
from mfs.store import Store
from mfs.store.runs import Run, recorded
from mfs.store.store import check_name


def run_scan(store: Store, name: str, kind: str | None = None, root: Path | None = None,
             metadata: Path | None = None, split_dir: Path | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Scan library `name` and write its tracks, failures and `runs` rows.

    Without `kind`/`root` the library is rescanned as it was last scanned.
    """
    check_name("library", name)  # before the library is opened and the lock taken
    config = _library_config(store, name, kind, root, metadata, split_dir)
    library = registry.create(config["kind"], Path(config["root"]),
                              metadata=_opt_path(config["metadata"]),
                              split_dir=_opt_path(config["split_dir"]))
    run = Run("scan", name)
    with store.writing(f"scan {name}") as writer, recorded(writer, run):
        result = scan(library, name, store.read_tracks(name), run.run_id, progress,
                      _reported_failures(store, name))
        writer.save_library_config(name, config)
        writer.replace_tracks(name, result.tracks)
        writer.append_failures([failure.row() for failure in result.failures])
        run.counts.update(result.counts, tracks=result.tracks.num_rows)
    return {"library": name, "run_id": run.run_id, **run.counts}


def _library_config(store: Store, name: str, kind: str | None, root: Path | None,
                    metadata: Path | None, split_dir: Path | None) -> dict:
    if kind is None and root is None:
        return store.library_config(name)
    if kind is None or root is None:
        raise ValueError("give both PATH and --kind for a new library (or neither to rescan)")
    return {"kind": kind, "root": str(root.resolve()),
            "metadata": str(metadata.resolve()) if metadata else None,
            "split_dir": str(split_dir.resolve()) if split_dir else None}


def _reported_failures(store: Store, name: str) -> dict[str, tuple]:
    """Each path's latest scan failure: a rescan does not write the same one again."""
    with store.connect_failures() as con:
        found = con.execute(
            "SELECT path, error_class, track_id, reason FROM failures_latest "
            "WHERE library = ? AND stage = 'scan'", [name]).fetchall()
    return {path: tuple(rest) for path, *rest in found}


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None

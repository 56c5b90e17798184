"""Atomic Parquet writes: a reader sees a whole file or no file, never half of one.

A file is written under a temporary name that no reader's glob matches (it does not end in
`.parquet`), flushed to disk, then renamed over its final name; rename is atomic on POSIX.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write `table` to `path` atomically (replacing any existing file) and return `path`."""
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_bytes_atomic(data: bytes, path: Path) -> Path:
    """Write small files (library configs) with the same all-or-nothing guarantee."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` fills a temporary beside `path`, which is then synced and renamed over
    `path`: readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable, so a power cut cannot resurrect the old file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(root: Path) -> int:
    """Delete temporaries left by killed writers (only call while holding the store lock)."""
    removed = 0
    for tmp in root.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed

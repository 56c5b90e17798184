"""Walking a library's folder tree safely, and fingerprinting file contents.

Real music folders hold broken symlinks, symlink loops, unreadable folders and names that
are not valid UTF-8. None of these may stop a scan: each becomes a `WalkProblem` that the
scan records as a failure, and the walk goes on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".wav", ".m4a", ".aac", ".opus", ".aiff", ".aif", ".au"}
)


@dataclass(frozen=True)
class FileEntry:
    path: Path  # absolute
    rel: str  # relative to the library root, POSIX separators
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WalkProblem:
    rel: str
    error_class: str
    reason: str


def walk_audio_files(root: Path) -> Iterator[FileEntry | WalkProblem]:
    """Yield every audio file under `root` (any depth, sorted), following symlinks once."""
    seen_dirs: set[tuple[int, int]] = set()
    yield from _walk(root, root, seen_dirs)


def _walk(root: Path, folder: Path, seen: set[tuple[int, int]]) -> Iterator:
    try:
        st = folder.stat()
        if (st.st_dev, st.st_ino) in seen:
            yield WalkProblem(_rel(root, folder), "SymlinkLoop", "folder already visited")
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as error:
        yield WalkProblem(_rel(root, folder), type(error).__name__, _reason(error))
        return
    for entry in entries:
        path = Path(entry.path)
        rel = _rel(root, path)
        if not _is_utf8(entry.name):
            yield WalkProblem(rel, "BadFileName", "file name is not valid UTF-8; rename it")
            continue
        try:
            if entry.is_dir(follow_symlinks=True):
                yield from _walk(root, path, seen)
                continue
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError as error:
            kind = "BrokenSymlink" if entry.is_symlink() else type(error).__name__
            if path.suffix.lower() in AUDIO_EXTENSIONS or entry.is_symlink():
                yield WalkProblem(rel, kind, _reason(error))
            continue
        yield FileEntry(path, rel, st.st_size, st.st_mtime_ns)


def fingerprint(path: Path) -> str:
    """BLAKE2b-128 of the file's bytes: equal for exact copies, wherever they live."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _rel(root: Path, path: Path) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else Path(rel).as_posix().encode("utf-8", "backslashreplace").decode()


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reason(error: OSError) -> str:
    return error.strerror or str(error)

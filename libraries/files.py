"""Walking a library's folder tree safely (fingerprints are in `fingerprint.py`).

Real music folders hold broken symlinks, symlink loops, unreadable folders and names that
are not valid UTF-8. None of these may stop a scan: each becomes a `WalkProblem` that the
scan records as a failure, and the walk goes on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".wav", ".m4a", ".aac", ".opus", ".aiff", ".aif", ".au"}
)


@dataclass(frozen=True)
class FileEntry:
    location: str  # the root joined with `rel`
    rel: str  # relative to the library root, POSIX separators
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        # Made on demand: a rescan never needs it for the (unchanged) bulk of the files.
        return Path(self.location)


@dataclass(frozen=True)
class WalkProblem:
    rel: str
    error_class: str
    reason: str


def walk_audio_files(root: Path) -> Iterator[FileEntry | WalkProblem]:
    """Yield every audio file under `root` (any depth, sorted), following symlinks once."""
    seen_dirs: set[tuple[int, int]] = set()
    yield from _walk(str(root), "", seen_dirs)


def _walk(folder: str, prefix: str, seen: set[tuple[int, int]]) -> Iterator:
    """Walk `folder`, whose path relative to the root is `prefix` ("" for the root, else
    ending in "/"). Relative paths are built as strings: on a rescan, where nothing is
    opened, the walk is most of the work, and Path objects per entry would triple it."""
    try:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            yield WalkProblem(_printable(prefix), "SymlinkLoop", "folder already visited")
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as error:
        yield WalkProblem(_printable(prefix), type(error).__name__, _reason(error))
        return
    for entry in entries:
        rel = prefix + entry.name
        if not _is_utf8(entry.name):
            yield WalkProblem(_printable(rel), "BadFileName",
                              "file name is not valid UTF-8; rename it")
            continue
        is_audio = os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS
        try:
            if entry.is_dir():
                yield from _walk(entry.path, rel + "/", seen)
                continue
            if not is_audio:
                continue
            st = entry.stat()
        except OSError as error:
            kind = "BrokenSymlink" if entry.is_symlink() else type(error).__name__
            if is_audio or entry.is_symlink():
                yield WalkProblem(rel, kind, _reason(error))
            continue
        if not stat.S_ISREG(st.st_mode):
            # Opening a FIFO blocks until a writer appears: the scan would hang holding
            # the store's lock. Sockets and devices are no audio files either.
            yield WalkProblem(rel, "NotARegularFile",
                              f"{rel} is a {_file_type(st.st_mode)}, "
                              "not a regular file; skipped")
            continue
        yield FileEntry(entry.path, rel, st.st_size, st.st_mtime_ns)


def _file_type(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def _printable(rel: str) -> str:
    """A relative path for messages: "." for the root, undecodable bytes as \\xNN escapes."""
    return os.fsencode(rel.rstrip("/") or ".").decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reason(error: OSError) -> str:
    return error.strerror or str(error)

"""One writer per store: an exclusive lock file that names its holder.

Readers never take the lock (Parquet files are immutable once renamed into place), so
`mfs status` and SQL queries work while an extraction runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path


class StoreLocked(RuntimeError):
    """Another live process holds the store's write lock."""


class StoreLock:
    """Context manager around `<root>/.lock`.

    Exclusion comes from an `flock` on the file, not from the file's existence: the kernel
    drops the flock when its holder dies however it dies, so a lock file left behind by a
    killed writer (stale, dead pid) is simply taken over, and there is no window in which
    a half-written lock file can be mistaken for a stale one. The file's JSON only names
    the holder for the `StoreLocked` message.
    """

    def __init__(self, root: Path, purpose: str) -> None:
        self.path = root / ".lock"
        self.purpose = purpose
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreLocked(_describe(self.path, self._read_holder())) from None
            if _same_file(fd, self.path):
                break
            # The previous holder unlinked this file as we opened it: lock the new one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_this_process(self.purpose)).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            # Unlink before unlocking, so nobody can lock the old file after we leave.
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None

    def _read_holder(self) -> dict:
        return read_holder(self.path.parent)


def read_holder(root: Path) -> dict:
    """Who the lock file of store `root` names (pid, host, purpose, command, since); empty
    when there is no lock file or its holder is still writing its name. The file outlives
    a killed holder, so the named process may be gone."""
    try:
        return json.loads((root / ".lock").read_text())
    except (OSError, ValueError):
        return {}


def raise_if_locked(root: Path) -> None:
    """Raise `StoreLocked` naming the holder if a live writer holds `root`'s lock.

    Takes nothing and leaves the file alone, so a command can refuse early, before it
    starts slow work that would only then find the store busy."""
    path = root / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreLocked(_describe(path, StoreLock(root, "")._read_holder())) from None
    finally:
        os.close(fd)  # also drops the shared lock, if we got it


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _this_process(purpose: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "command": " ".join(sys.argv),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _describe(path: Path, holder: dict) -> str:
    if not holder:
        return f"store is locked by another process that is just starting ({path}); try again"
    return (
        f"store is locked by pid {holder.get('pid')} on {holder.get('host')} "
        f"({holder.get('purpose')}: {holder.get('command')!r}, since {holder.get('since')}); "
        f"wait for it to finish (lock file {path})"
    )

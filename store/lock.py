"""One writer per store: an exclusive lock file that names its holder.

Readers never take the lock (Parquet files are immutable once renamed into place), so
`mfs status` and SQL queries work while an extraction runs.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path


class StoreLocked(RuntimeError):
    """Another live process holds the store's write lock."""


class StoreLock:
    """Context manager around `<root>/.lock`, created with O_EXCL so only one writer wins."""

    def __init__(self, root: Path, purpose: str) -> None:
        self.path = root / ".lock"
        self.purpose = purpose
        self.held = False

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_holder()
                if holder is not None and _holder_is_alive(holder):
                    raise StoreLocked(_describe(self.path, holder)) from None
                # The holder died without releasing: the lock is stale, take it over.
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(_this_process(self.purpose), handle)
            self.held = True
            return
        raise StoreLocked(f"could not take the store lock {self.path}; another writer raced us")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _read_holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            # A lock file that cannot be read is one whose writer died mid-write.
            return None


def _this_process(purpose: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "command": " ".join(sys.argv),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _holder_is_alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot check another machine's processes: assume it is alive
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    return True


def _describe(path: Path, holder: dict) -> str:
    return (
        f"store is locked by pid {holder.get('pid')} on {holder.get('host')} "
        f"({holder.get('purpose')}: {holder.get('command')!r}, since {holder.get('since')}); "
        f"wait for it to finish, or delete {path} if that process is gone"
    )

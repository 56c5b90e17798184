"""Run records: the one place a `runs` row is built (scan, extract, import, benchmark).

A run appends a `started` row as soon as it holds the store lock and a `completed` or
`failed` row when it ends. Parts are immutable, so nothing is ever updated in place: a
run's current state is its newest row (view `runs`; every row in `runs_history`). A run
killed outright (SIGKILL, OOM killer, power cut) never writes its end row, so its newest
row stays `started`; the lock file then tells a live run from a dead one, which is why
each row names the process (`pid`, `host`) that wrote it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mfs.store.provenance import library_versions
from mfs.store.text import squeeze

if TYPE_CHECKING:
    from mfs.store.store import StoreWriter

STARTED, COMPLETED, FAILED = "started", "completed", "failed"
# Not stored: what `run_state` calls a `started` run whose process is alive / gone.
RUNNING, INTERRUPTED = "running", "interrupted"
REASON_CHARS = 300


@dataclass
class Run:
    """One scan / extract / import / benchmark command; `counts` is filled as it goes."""

    kind: str
    library: str | None
    extractors: list[str] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    counts: dict = field(default_factory=dict)

    def row(self, status: str, reason: str | None = None) -> dict:
        """The `runs` row recording this run as `status` now (schema in SCHEMA.md)."""
        return {
            "run_id": self.run_id, "kind": self.kind, "library": self.library,
            "extractors": list(self.extractors), "status": status,
            "started_at": self.started_at,
            "finished_at": None if status == STARTED else datetime.now(UTC),
            "counts": json.dumps(self.counts, default=str), "versions": library_versions(),
            "command": " ".join(sys.argv), "reason": reason,
            "pid": os.getpid(), "host": socket.gethostname(),
        }


@contextmanager
def recorded(writer: StoreWriter, run: Run) -> Iterator[Run]:
    """Record `run` as started, then as completed, or as failed with the error's one-line
    reason (the error still propagates). Use inside `Store.writing()`."""
    writer.append_run(run.row(STARTED))
    try:
        yield run
    except BaseException as error:
        _record_failure(writer, run, error)
        raise
    writer.append_run(run.row(COMPLETED))


def _record_failure(writer: StoreWriter, run: Run, error: BaseException) -> None:
    # If even this write fails (disk full), the `started` row stays and `mfs status`
    # shows the run interrupted; the original error is the one worth raising.
    with suppress(OSError):
        writer.append_run(run.row(FAILED, one_line(error)))


def one_line(error: BaseException) -> str:
    """`ErrorClass: message` on one line, cut to REASON_CHARS."""
    message = squeeze(error)
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def run_state(row: dict, holder: dict) -> str:
    """`running` or `interrupted` for a run whose newest row is `started`; else its status.

    A live run holds the store lock, and the lock file names its holder (`holder`, from
    `read_holder`): the run is alive only if that holder is the process that wrote the row
    and, on this host, that process still exists (a killed writer leaves its lock file).
    """
    if row["status"] != STARTED:
        return row["status"]
    pid, host = row.get("pid"), row.get("host")
    if pid is None or (holder.get("pid"), holder.get("host")) != (pid, host):
        return INTERRUPTED
    if host == socket.gethostname() and not _process_exists(pid):
        return INTERRUPTED
    return RUNNING


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True

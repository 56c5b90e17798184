"""Failure records: the one place a `failures` row is built (scans and extractions).

A failure is kept, never fixed in place: a retry that fails again appends a row with
`attempts` one higher, and the view `failures_latest` shows each path's newest row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Failure:
    """One track (or file) that a stage could not handle, and why (schema in SCHEMA.md).

    `stage` is `scan` or an extractor's name; `config_hash` is None for a scan, which has
    no config. `track_id` is None for a file that never got an ID (a broken link).
    """

    library: str
    path: str
    stage: str
    error_class: str
    reason: str
    run_id: str
    track_id: str | None = None
    config_hash: str | None = None
    attempts: int = 1
    failed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict:
        """The `failures` row (column names as in `schema.FAILURES`)."""
        return asdict(self)

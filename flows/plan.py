"""What is missing: one DuckDB anti-join of the tracks against the stored features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfs.extractors.base import Extractor
from mfs.store import Store
from mfs.store.views import view_name

MAX_ATTEMPTS = 3  # a track that failed this often for a config is skipped, not retried

CANDIDATES = """
SELECT t.track_id, t.library_root, t.path, coalesce(f.attempts, 0) AS attempts
FROM tracks t
LEFT JOIN (SELECT track_id, max(attempts) AS attempts FROM failures
           WHERE stage = $stage AND config_hash = $config_hash GROUP BY track_id) f
       USING (track_id)
WHERE t.status = 'ok' AND ($library IS NULL OR t.library = $library) {stored_filter}
ORDER BY t.track_id
"""

NOT_STORED = """AND NOT EXISTS (SELECT 1 FROM "{view}" s
                    WHERE s.track_id = t.track_id AND s.config_hash = $config_hash)"""


@dataclass
class Plan:
    """Tracks to extract (with their previous failed attempts) and how many were given up."""

    todo: list[tuple[str, Path, int]]
    skipped: int


def plan_missing(store: Store, library: str | None, extractor: Extractor,
                 max_attempts: int) -> Plan:
    """(track, extractor, config) pairs not yet stored, minus tracks that failed too often."""
    con = store.connect()
    stored_filter = ""
    if extractor.name in store.extractors():
        stored_filter = NOT_STORED.format(view=view_name(extractor.name))
    rows = con.execute(
        CANDIDATES.format(stored_filter=stored_filter),
        {"stage": extractor.name, "config_hash": extractor.config_hash(), "library": library},
    ).fetchall()
    todo = [(tid, Path(root) / path, attempts) for tid, root, path, attempts in rows
            if attempts < max_attempts]
    return Plan(todo, len(rows) - len(todo))

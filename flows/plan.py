"""What is missing: one DuckDB anti-join of the tracks against the stored features (and,
for a config that keeps windows, its stored windows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfs.extractors.base import Extractor
from mfs.store import Store
from mfs.store.store import check_name

MAX_ATTEMPTS = 3  # a track that failed this often for a config is skipped, not retried

CANDIDATES = """
SELECT t.track_id, t.library_root, t.path, coalesce(f.attempts, 0) AS attempts
FROM read_parquet($tracks, union_by_name = true) t
LEFT JOIN (SELECT track_id, max(attempts) AS attempts FROM failures
           WHERE stage = $stage AND config_hash = $config_hash GROUP BY track_id) f
       USING (track_id)
WHERE t.status = 'ok' AND ($library IS NULL OR t.library = $library) {stored_filter}
ORDER BY t.track_id
"""

# Only this config's parts, only their key column: the planner never reads a vector, and
# never the footers of other extractors' parts (as the store's views would).
IN_PARTS = "t.track_id IN (SELECT track_id FROM read_parquet(${name}))"


@dataclass
class Plan:
    """Tracks to extract (with their previous failed attempts) and how many were given up."""

    todo: list[tuple[str, Path, int]]
    skipped: int


def plan_missing(store: Store, library: str | None, extractor: Extractor,
                 max_attempts: int) -> Plan:
    """(track, extractor, config) pairs not yet stored, minus tracks that failed too often."""
    pattern = f"{check_name('library', library)}.parquet" if library else "*.parquet"
    tracks = sorted(store.tracks_dir.glob(pattern))
    if not tracks:
        return Plan([], 0)
    config_hash = extractor.config_hash()
    params = {"stage": extractor.name, "config_hash": config_hash, "library": library,
              "tracks": [str(path) for path in tracks]}
    stored_filter = _not_stored(store, extractor, config_hash, params)
    with store.connect_failures() as con:
        rows = con.execute(CANDIDATES.format(stored_filter=stored_filter), params).fetchall()
    todo = [(tid, Path(root) / path, attempts) for tid, root, path, attempts in rows
            if attempts < max_attempts]
    return Plan(todo, len(rows) - len(todo))


def _not_stored(store: Store, extractor: Extractor, config_hash: str, params: dict) -> str:
    """The filter that leaves out stored tracks (adding its parts to `params`): a track is
    stored when it has a feature row, and its windows too if the config keeps them, so a
    track whose window part was quarantined is redone, features and windows together."""
    tables = {"features": store.features_dir}
    if extractor.keeps_windows:
        tables["windows"] = store.windows_dir
    parts = {name: sorted((folder / extractor.name / config_hash).glob("*.parquet"))
             for name, folder in tables.items()}
    if not all(parts.values()):
        return ""  # a table with nothing stored: every track is missing
    params.update({name: [str(path) for path in found] for name, found in parts.items()})
    return "AND NOT (" + " AND ".join(IN_PARTS.format(name=name) for name in parts) + ")"

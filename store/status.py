"""What the store holds: tracks per library and status, extractor coverage, recent failures."""

from __future__ import annotations

from mfs.store.store import Store
from mfs.store.views import view_name

TRACKS_BY_STATUS = """
SELECT library, status, count(*) AS tracks FROM tracks GROUP BY ALL ORDER BY library, status
"""

COVERAGE = """
SELECT t.library, {extractor} AS extractor, f.config_hash,
       count(*) AS tracks_with_features,
       (SELECT count(*) FROM tracks WHERE library = t.library AND status = 'ok') AS ok_tracks
FROM "{view}" f JOIN tracks t USING (track_id)
GROUP BY ALL ORDER BY t.library, f.config_hash
"""

RECENT_FAILURES = """
SELECT failed_at, library, stage, path, error_class, reason, attempts
FROM failures_latest ORDER BY failed_at DESC, path LIMIT ?
"""


def store_status(store: Store, recent: int = 10) -> dict:
    """A JSON-ready summary of the store, as `mfs status` shows it."""
    con = store.connect()
    coverage = []
    for extractor in store.extractors():
        sql = COVERAGE.format(extractor="'" + extractor + "'", view=view_name(extractor))
        coverage += _records(con.execute(sql))
    return {
        "store": str(store.root),
        "tracks": _records(con.execute(TRACKS_BY_STATUS)),
        "coverage": coverage,
        "recent_failures": _records(con.execute(RECENT_FAILURES, [recent])),
    }


def _records(result) -> list[dict]:
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]

"""What the store holds: tracks per library and status, extractor coverage (with each
config), runs that are running or died and the most recent ones, recent failures."""

from __future__ import annotations

import json
from collections.abc import Callable

from mfs.store.health import damage_note
from mfs.store.lock import read_holder
from mfs.store.runs import INTERRUPTED, RUNNING, run_state
from mfs.store.sql import ident
from mfs.store.store import Store
from mfs.store.views import view_name

TRACKS_BY_STATUS = """
SELECT library, status, count(*) AS tracks FROM tracks GROUP BY ALL ORDER BY library, status
"""

COVERAGE = """
SELECT t.library, $extractor AS extractor, f.config_hash, min(f.config) AS config,
       count(*) AS tracks_with_features,
       (SELECT count(*) FROM tracks WHERE library = t.library AND status = 'ok') AS ok_tracks
FROM {view} f JOIN tracks t USING (track_id)
GROUP BY t.library, f.config_hash ORDER BY t.library, f.config_hash
"""

# Every run still `started` (running, or died: only the lock file can tell) and the
# `recent` newest others, newest first.
RUNS = """
SELECT * FROM runs
QUALIFY status = 'started' OR row_number() OVER (ORDER BY started_at DESC) <= ?
ORDER BY started_at DESC
"""

RUN_COLUMNS = ("run_id", "kind", "library", "extractors", "status", "started_at",
               "finished_at", "reason")

RECENT_FAILURES = """
SELECT failed_at, library, stage, path, error_class, reason, attempts
FROM failures_latest ORDER BY failed_at DESC, path LIMIT ?
"""


# (extractor, stored config) -> the hash the code installed now gives it, None if unknown.
CurrentHash = Callable[[str, dict], str | None]


def store_status(store: Store, recent: int = 10, current_hash: CurrentHash | None = None
                 ) -> dict:
    """A JSON-ready summary of the store, as `mfs status` shows it. `damaged` is one line
    naming how many store files are damaged and the commands that list and repair them
    (None when all read). With `current_hash` (the store imports no extractor, so the
    caller passes `registry.current_config_hash`), each coverage row says whether it is
    `stale`: computed by code that has changed since, and `stale` is one line on how to
    re-extract (None when nothing is)."""
    holder = read_holder(store.root)  # before the runs: a run ending meanwhile reads done
    con = store.connect()
    coverage = []
    for extractor in store.extractors():
        sql = COVERAGE.format(view=ident(view_name(extractor)))
        coverage += _records(con.execute(sql, {"extractor": extractor}))
    if current_hash is not None:
        for row in coverage:
            now = current_hash(row["extractor"], json.loads(row["config"]))
            row["stale"] = None if now is None else now != row["config_hash"]
    return {
        "store": str(store.root),
        "damaged": damage_note(store.root),
        "stale": _stale_note(coverage),
        "tracks": _records(con.execute(TRACKS_BY_STATUS)),
        "coverage": coverage,
        "runs": _runs(_records(con.execute(RUNS, [recent])), holder, recent),
        "recent_failures": _records(con.execute(RECENT_FAILURES, [recent])),
    }


def _stale_note(coverage: list[dict]) -> str | None:
    """One line naming the outputs whose extractor's code has changed since, and the fix."""
    stale = sorted({f"{r['extractor']}@{r['config_hash']}" for r in coverage if r.get("stale")})
    if not stale:
        return None
    return (f"stale: {', '.join(stale)} computed by older extractor code; "
            "`mfs extract LIB --extractor SPEC` re-extracts (old rows stay until removed)")


def _runs(rows: list[dict], holder: dict, recent: int) -> list[dict]:
    """The running runs, then the `recent` newest others and every interrupted one; a
    `started` run shows as `running` or `interrupted` (its process is gone, e.g. killed),
    with a reason."""
    shown = []
    for row in rows:
        state = run_state(row, holder)
        if state == INTERRUPTED:
            row["reason"] = (f"process {row.get('pid')} on {row.get('host')} ended without "
                             "recording an end (killed or crashed)")
        shown.append({**{c: row.get(c) for c in RUN_COLUMNS}, "status": state})
    running = [r for r in shown if r["status"] == RUNNING]
    others = [r for r in shown if r["status"] != RUNNING]
    # Every died run stays listed (the SQL keeps every `started` row for that), however
    # many runs came after it: it is what a user has to look at.
    newest = {id(r) for r in others[:recent]}
    return running + [r for r in others if id(r) in newest or r["status"] == INTERRUPTED]


def _records(result) -> list[dict]:
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]

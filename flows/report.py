"""What a flow run shows in Prefect's UI besides its task names: a progress artifact per
extractor (tracks done / total), a summary table (extracted, skipped, failed with
reasons) and one log line per step, all through Prefect's run logger and artifacts API.

The summary rows are a plain function of the run's result and the store's `failures`
(the failure reasons are read back by the run's id, so they are the stored ones).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.logging import get_run_logger

from mfs.store import Store

# Progress is sent to the API at most this often (and once at the end): one call per
# track would cost more than a fast extractor spends on the track.
PROGRESS_EVERY_S = 1.0

REASONS = """
SELECT stage, config_hash, error_class || ': ' || reason AS why, count(*) AS tracks
FROM failures WHERE run_id = ? GROUP BY ALL ORDER BY tracks DESC, why
"""


def artifact_key(*parts: str) -> str:
    """An artifact key from names (keys allow only lower-case letters, digits and '-')."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


@contextmanager
def artifact_progress(label: str, total: int) -> Iterator[Callable[[int, float], None]]:
    """A `Progress` (flows/extract.py) that keeps a Prefect progress artifact up to date."""
    artifact_id = create_progress_artifact(
        progress=0.0, description=f"{label}: tracks done (extracted or failed) of {total}")
    sent = time.monotonic()

    def update(done: int, _elapsed: float) -> None:
        nonlocal sent
        if time.monotonic() - sent >= PROGRESS_EVERY_S:
            update_progress_artifact(artifact_id, progress=100.0 * done / total)
            sent = time.monotonic()

    try:
        yield update
    finally:
        update_progress_artifact(artifact_id, progress=100.0)


def both(first: Callable | None, second: Callable) -> Callable:
    """Two `Progress` displays as one (the CLI's bar and the artifact)."""
    if first is None:
        return second

    @contextmanager
    def progress(label: str, total: int) -> Iterator[Callable[[int, float], None]]:
        with first(label, total) as one, second(label, total) as two:
            yield lambda done, elapsed: (one(done, elapsed), two(done, elapsed))

    return progress


def summary_rows(store: Store, result: dict) -> list[dict]:
    """One row per extractor of an extract run's result, with its failures' reasons."""
    with store.connect_failures() as con:
        reasons = con.execute(REASONS, [result["run_id"]]).fetchall()
    rows = []
    for spec, counts in result["extractors"].items():
        why = [f"{text} ({n} tracks)" for stage, config_hash, text, n in reasons
               if config_hash == counts["config_hash"] and spec.split(":")[0] == stage]
        rows.append({"extractor": spec, "config_hash": counts["config_hash"],
                     "missing": counts["planned"], "extracted": counts["ok"],
                     "failed": counts["failed"],
                     "skipped": counts["skipped"], "seconds": counts.get("seconds", 0.0),
                     "failure reasons": "; ".join(why) or "none"})
    return rows


def summary_line(result: dict) -> str:
    """The run in one line: what it did, or that it had nothing to do."""
    where = result["library"] or "every library"
    counts = result["extractors"].values()
    if not any(c["planned"] for c in counts):
        return (f"nothing to do: every track of {where} has every requested feature "
                f"({sum(c['skipped'] for c in counts)} skipped after repeated failures)")
    return (f"{where}: {sum(c['ok'] for c in counts)} extracted, "
            f"{sum(c['failed'] for c in counts)} failed, "
            f"{sum(c['skipped'] for c in counts)} skipped after repeated failures")


def publish_summary(store: Store, result: dict) -> None:
    """Log the run's summary line and attach its table artifact to the flow run."""
    line = summary_line(result)
    get_run_logger().info(line)
    create_table_artifact(summary_rows(store, result), description=line,
                          key=artifact_key("extract", result["library"] or "all"))


def log(message: str, *args: object) -> None:
    """One line in the current flow or task run's log (Prefect's run logger)."""
    get_run_logger().info(message, *args)

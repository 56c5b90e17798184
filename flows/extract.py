"""Incremental extraction (flows `extract-library` and `backfill-model`).

A run plans the missing (track, extractor, config) pairs with one anti-join, extracts
them in batches and writes a part (atomic Parquet file) every TRACKS_PER_PART tracks or
SECONDS_PER_PART seconds, whichever comes first, so a run killed at any point loses at
most a minute of work and a re-run redoes only what is missing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, task

from mfs.console import bar_progress
from mfs.extractors.base import Extractor
from mfs.extractors.device import pick_device
from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_rows
from mfs.flows.plan import MAX_ATTEMPTS, Plan, plan_missing
from mfs.flows.prepare import DEFAULT_EXTRACTORS, create_extractors
from mfs.flows.scan import run_scan
from mfs.store import Store
from mfs.store.runs import Run, recorded
from mfs.store.store import StoreWriter

TRACKS_PER_PART = 64
# A part is also written once this many seconds have passed since the last one, so a slow
# model killed mid-run keeps what it computed (tests lower it).
SECONDS_PER_PART = 60.0


def run_extract(store: Store, library: str | None, extractor_names: list[str],
                batch_size: int = 16, device: str | None = None,
                max_attempts: int = MAX_ATTEMPTS, show_progress: bool = False,
                tracks_per_part: int = TRACKS_PER_PART) -> dict:
    """Extract every missing pair for `library` (None: all libraries); returns counts.

    `extractor_names` are registry names or specs with a config (`energy:window_seconds=2`).
    """
    extractors = create_extractors(extractor_names)
    run = Run("extract", library, extractor_names)
    with store.writing(f"extract {library or 'all libraries'}") as writer, \
            recorded(writer, run):
        for spec, extractor in zip(extractor_names, extractors, strict=True):
            plan = plan_missing(store, library, extractor, max_attempts)
            run.counts[spec] = _extract_plan(writer, extractor, plan, run.run_id, batch_size,
                                             device, show_progress, tracks_per_part)
    return {"run_id": run.run_id, "library": library, "extractors": run.counts}


def _extract_plan(writer: StoreWriter, extractor: Extractor, plan: Plan, run_id: str,
                  batch_size: int, device: str | None, show_progress: bool,
                  tracks_per_part: int) -> dict:
    counts = {"planned": len(plan.todo), "ok": 0, "failed": 0, "skipped": plan.skipped,
              "config_hash": extractor.config_hash()}
    if not plan.todo:
        return counts  # nothing missing: no model load, no decoding
    extractor.load(pick_device(device))
    builder = RowBuilder(extractor, run_id)
    location = {tid: (path, attempts) for tid, path, attempts in plan.todo}
    rows: list[dict] = []
    failures: list[dict] = []
    started = last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if rows:
            writer.append_features(extractor.name, extractor.config_hash(), builder.table(rows))
        writer.append_failures(failures)
        rows.clear()
        failures.clear()
        last_flush = time.monotonic()

    with bar_progress(extractor.name, len(plan.todo), enabled=show_progress) as advance:
        tracks = ((tid, path) for tid, path, _ in plan.todo)
        for item in extract_rows(builder, tracks, batch_size):
            if isinstance(item, TrackFailure):
                counts["failed"] += 1
                failures.append(_failure_row(item, extractor, location, run_id))
            else:
                counts["ok"] += 1
                rows.append(item)
            if (len(rows) >= tracks_per_part
                    or time.monotonic() - last_flush >= SECONDS_PER_PART):
                flush()
            advance(counts["ok"] + counts["failed"], time.monotonic() - started)
    flush()
    counts["seconds"] = round(time.monotonic() - started, 3)
    return counts


def _failure_row(failure: TrackFailure, extractor: Extractor, location: dict,
                 run_id: str) -> dict:
    path, attempts = location[failure.track_id]
    library = failure.track_id.split(":", 1)[0]
    return {"track_id": failure.track_id, "library": library, "path": str(path),
            "stage": extractor.name, "config_hash": extractor.config_hash(),
            "error_class": failure.error_class, "reason": failure.reason,
            "attempts": attempts + 1, "failed_at": datetime.now(UTC), "run_id": run_id}


@flow(name="scan-library")
def scan_library(library: str, store_root: str | None = None) -> dict:
    """Rescan a library registered in the store (as a scheduled deployment would)."""
    return run_scan(Store(store_root), library)


@task(name="scan")
def scan_task(store_root: str | None, library: str) -> dict:
    return run_scan(Store(store_root), library)


@task(name="extract")
def extract_task(store_root: str | None, library: str | None, extractors: list[str],
                 batch_size: int, device: str | None, show_progress: bool) -> dict:
    return run_extract(Store(store_root), library, extractors, batch_size, device,
                       show_progress=show_progress)


@flow(name="extract-library")
def extract_library(library: str, extractors: list[str] = list(DEFAULT_EXTRACTORS),  # noqa: B006
                    batch_size: int = 16, device: str = "auto", store_root: str | None = None,
                    rescan: bool = True, show_progress: bool = False) -> dict:
    """Rescan a library, then extract whatever features it is missing."""
    scan = scan_task(store_root, library) if rescan else None
    result = extract_task(store_root, library, extractors, batch_size, device, show_progress)
    return {"scan": scan, **result}


@flow(name="backfill-model")
def backfill_model(extractor: str | list[str], library: str | None = None,
                   batch_size: int = 16, device: str = "auto", store_root: str | None = None,
                   show_progress: bool = False) -> dict:
    """Run (newly added) extractors over every known track of every library (or one).

    `extractor` is one spec or a list of them (what `mfs backfill` passes)."""
    specs = [extractor] if isinstance(extractor, str) else extractor
    return extract_task(store_root, library, specs, batch_size, device, show_progress)

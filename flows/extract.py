"""Incremental extraction (flows `extract-library` and `backfill-model`).

The recipe: scan the library, plan the missing (track, extractor, config) pairs with one
anti-join, extract them batch by batch, and record the run. Each step is a plain function
here or in `plan.py`/`scan.py`; `run_extract` calls them directly (tests, benchmarks) and
the flows call the same functions as Prefect tasks (`IN_TASKS`), so a flow run shows
`scan gtzan`, `plan fma518`, `extract fma518 batch 3/12`, …

A batch is `ExtractSettings.tracks_per_part` tracks (TRACKS_PER_PART) and is stored as
one part (atomic Parquet file; with its window rows as a part of `windows/`, written just
before it, when the config keeps windows), or as several when a slow model takes longer than
SECONDS_PER_PART, so a run killed at any point loses at most a minute of work and a
re-run redoes only what is missing. Batches run one after another in one process: the
model is loaded once per extractor, the writer lock is held for the whole run, and only
counts cross a task boundary, never feature arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from mfs.extractors.base import Extractor
from mfs.extractors.device import pick_device
from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_tracks
from mfs.flows import report
from mfs.flows.gpu_slot import gpu_slot
from mfs.flows.plan import Plan, plan_missing
from mfs.flows.prepare import DEFAULT_EXTRACTORS, create_extractors
from mfs.flows.scan import run_scan
from mfs.flows.settings import TRACKS_PER_PART, ExtractSettings, flow_store
from mfs.store import Store
from mfs.store.failures import Failure
from mfs.store.runs import Run, recorded
from mfs.store.store import StoreWriter, batch_part_name, batch_part_prefix, part_stamp

# A part is also written once this many seconds have passed since the last one, so a slow
# model killed mid-run keeps what it computed (tests lower it).
SECONDS_PER_PART = 60.0

# `progress(label, total)` opens a progress display and yields `update(done, elapsed_s)`;
# the CLI passes its console's bar, so this package never imports the terminal.
Progress = Callable[[str, int], AbstractContextManager[Callable[[int, float], None]]]


# The progress display of flows called in this process (the CLI's bar). Not a flow
# parameter: a deployment's parameters are JSON a user may set, a display is not.
DISPLAY: ContextVar[Progress | None] = ContextVar("mfs_progress_display", default=None)


@contextmanager
def displayed(progress: Progress) -> Iterator[None]:
    """Flows called inside the block show their progress on `progress` too."""
    token = DISPLAY.set(progress)
    try:
        yield
    finally:
        DISPLAY.reset(token)


@contextmanager
def no_progress(_label: str, _total: int) -> Iterator[Callable[[int, float], None]]:
    """The default `Progress`: shows nothing."""
    yield lambda _done, _elapsed: None


@dataclass(frozen=True)
class Batch:
    """Tracks (id, path, earlier failed attempts) that one task extracts, and its place."""

    number: int
    total: int
    tracks: list[tuple[str, Path, int]]


def batches(todo: list[tuple[str, Path, int]], size: int) -> list[Batch]:
    """`todo` cut into batches of `size` tracks, numbered from 1."""
    starts = range(0, len(todo), size)
    return [Batch(n, len(starts), todo[start:start + size]) for n, start in enumerate(starts, 1)]


class ExtractorJob:
    """One extractor's share of a run: its loaded model, where its rows go, and how a
    failure or a part is written. A plain class (not a dataclass): Prefect walks dataclass
    task arguments field by field, and this one holds a model and the store's writer."""

    def __init__(self, spec: str, extractor: Extractor, writer: StoreWriter, run: RunKey,
                 batch_size: int) -> None:
        self.spec, self.extractor, self.writer = spec, extractor, writer
        self.run, self.run_id, self.batch_size = run, run.run_id, batch_size
        self.config_hash = extractor.config_hash()
        self.builder: RowBuilder | None = None

    def part_name(self, batch: Batch, chunk: int) -> str:
        return batch_part_name(self.run.stamp, self.run_id, self.extractor.name,
                               self.config_hash, batch.number, chunk)

    def earlier_attempt(self, batch: Batch) -> EarlierAttempt:
        """What an earlier attempt at `batch` in this run stored before its process died
        (a Dask worker killed mid-batch, whose task Dask then runs again): those tracks
        are not extracted twice, and the next chunk gets a fresh name."""
        prefix = batch_part_prefix(self.run.stamp, self.run_id, self.extractor.name,
                                   self.config_hash, batch.number)
        store = self.writer.store
        folder = store.features_dir / self.extractor.name / self.config_hash
        stored = sorted(folder.glob(f"{prefix}-c*.parquet"))
        failed = sorted(store.failures_dir.glob(f"{prefix}-c*.parquet"))
        chunks = [int(p.stem.rsplit("-c", 1)[1]) for p in [*stored, *failed]]
        return EarlierAttempt(_track_ids(stored), _track_ids(failed),
                              max(chunks, default=-1) + 1)

    def load(self, device: str) -> None:
        """Load the model, then its row builder (which hashes the model's files): only a
        run with something missing pays for either."""
        self.extractor.load(pick_device(device))
        self.builder = RowBuilder(self.extractor, self.run_id)

    def failure(self, failure: TrackFailure, path: Path, attempts: int) -> Failure:
        return Failure(library=failure.track_id.split(":", 1)[0], path=str(path),
                       stage=self.extractor.name, error_class=failure.error_class,
                       reason=failure.reason, run_id=self.run_id, track_id=failure.track_id,
                       config_hash=self.config_hash, attempts=attempts + 1)

    def write(self, name: str, rows: list[dict], windows: list[pa.Table],
              failures: list[Failure]) -> None:
        """Store `rows` as part `name` and `failures` beside it, then empty the lists. The
        tracks' `windows` go first (`StoreWriter.append_windows`): a feature row is only
        ever stored after its windows, so a track the planner skips has them."""
        if windows:
            self.writer.append_windows(self.extractor.name, self.config_hash,
                                       pa.concat_tables(windows), name)
        if rows:
            self.writer.append_features(self.extractor.name, self.config_hash,
                                        self.builder.table(rows), name)
        self.writer.append_failures([failure.row() for failure in failures], name)
        rows.clear()
        windows.clear()
        failures.clear()


def extract_batch(job: ExtractorJob, batch: Batch,
                  on_track: Callable[[], None] | None = None) -> dict[str, int]:
    """Extract and store one batch (`job` loaded); returns {"ok": n, "failed": n}, the
    tracks an earlier attempt at it stored included. `on_track` is called as each track
    finishes (progress)."""
    location = {track_id: (path, attempts) for track_id, path, attempts in batch.tracks}
    earlier = job.earlier_attempt(batch)
    counts = {"ok": len(earlier.ok), "failed": len(earlier.failed)}
    chunk = earlier.next_chunk
    rows: list[dict] = []
    windows: list[pa.Table] = []
    failures: list[Failure] = []
    last_write = time.monotonic()
    tracks = ((track_id, path) for track_id, path, _ in batch.tracks
              if track_id not in earlier.ok and track_id not in earlier.failed)
    for item in extract_tracks(job.builder, tracks, job.batch_size):
        if isinstance(item, TrackFailure):
            counts["failed"] += 1
            failures.append(job.failure(item, *location[item.track_id]))
        else:
            counts["ok"] += 1
            rows.append(item.row)
            if item.windows is not None:
                windows.append(item.windows)
        if time.monotonic() - last_write >= SECONDS_PER_PART:
            job.write(job.part_name(batch, chunk), rows, windows, failures)
            chunk += 1
            last_write = time.monotonic()
        if on_track is not None:
            on_track()
    job.write(job.part_name(batch, chunk), rows, windows, failures)
    return counts


@dataclass(frozen=True)
class RunKey:
    """What names a run's parts: its id and its start as part names write it."""

    run_id: str
    stamp: str

    @classmethod
    def of(cls, run: Run) -> RunKey:
        return cls(run.run_id, part_stamp(run.started_at))


@dataclass(frozen=True)
class EarlierAttempt:
    """Tracks of a batch already stored in this run (extracted / failed), and the number
    its next part takes."""

    ok: frozenset[str]
    failed: frozenset[str]
    next_chunk: int


def _track_ids(parts: list[Path]) -> frozenset[str]:
    if not parts:
        return frozenset()
    return frozenset(pq.read_table(parts, columns=["track_id"]).column(0).to_pylist())


@dataclass(frozen=True)
class Steps:
    """How a run calls its steps: directly (`DIRECT`), as Prefect tasks (`IN_TASKS`), or
    with the batches spread over a Dask cluster (`spread.cluster_steps`)."""

    plan: Callable[[Store, str | None, Extractor, int], Plan] = plan_missing
    batch: Callable[..., dict[str, int]] = extract_batch
    # Held while a model is loaded and extracting (a flow: the GPU's concurrency slot).
    device_slot: Callable[[str], AbstractContextManager] = lambda _device: nullcontext()
    # Set when the flow runs on a Dask cluster (`flows/spread.py`): submits every batch to
    # the workers and yields each batch's counts as it completes (calling `on_tracks(n)`).
    spread: Callable[..., Iterator[dict[str, int]]] | None = None


DIRECT = Steps()


def run_extract(store: Store, library: str | None, specs: list[str],
                settings: ExtractSettings | None = None, progress: Progress | None = None,
                steps: Steps = DIRECT) -> dict:
    """Extract every missing pair for `library` (None: all libraries); returns counts.

    `specs` are registry names or specs with a config (`energy:window_seconds=2`). The
    store's writer lock is held, and the run recorded, from the first plan to the last part.
    """
    settings = settings or ExtractSettings()
    progress = progress or no_progress
    extractors = create_extractors(specs)
    run = Run("extract", library, specs)
    with store.writing(f"extract {library or 'all libraries'}") as writer, \
            recorded(writer, run):
        for spec, extractor in zip(specs, extractors, strict=True):
            plan = steps.plan(store, library, extractor, settings.max_attempts)
            job = ExtractorJob(spec, extractor, writer, RunKey.of(run),
                               settings.batch_size_for(extractor))
            run.counts[spec] = extract_plan(job, plan, settings, progress, steps)
    return {"run_id": run.run_id, "library": library, "extractors": run.counts}


def extract_plan(job: ExtractorJob, plan: Plan, settings: ExtractSettings,
                 progress: Progress = no_progress, steps: Steps = DIRECT) -> dict:
    """Load the model (only if anything is missing) and extract the plan batch by batch."""
    counts = {"planned": len(plan.todo), "ok": 0, "failed": 0, "skipped": plan.skipped,
              "config_hash": job.config_hash}
    if not plan.todo:
        return counts  # nothing missing: no model load, no decoding
    started = time.monotonic()
    with steps.device_slot(settings.device), progress(job.extractor.name,
                                                      len(plan.todo)) as update:
        done = 0

        def on_tracks(n: int = 1) -> None:
            nonlocal done
            done += n
            update(done, time.monotonic() - started)

        todo = batches(plan.todo, settings.tracks_per_part)
        if steps.spread is not None:  # the workers load the model, the run only waits
            results = steps.spread(job, todo, settings, on_tracks)
        else:
            loading = time.monotonic()
            job.load(settings.device)
            # Apart, so a benchmark can tell a run's fixed cost from its rate.
            counts["load_seconds"] = round(time.monotonic() - loading, 3)
            results = (steps.batch(job, batch, on_tracks) for batch in todo)
        for batch_counts in results:
            counts["ok"] += batch_counts["ok"]
            counts["failed"] += batch_counts["failed"]
    counts["seconds"] = round(time.monotonic() - started, 3)
    return counts


def _plan_logged(store: Store, library: str | None, extractor: Extractor,
                 max_attempts: int) -> Plan:
    plan = plan_missing(store, library, extractor, max_attempts)
    report.log("%s (config %s): %d tracks missing, %d skipped (failed %d times already)",
               extractor.name, extractor.config_hash(), len(plan.todo), plan.skipped,
               max_attempts)
    return plan


def _batch_logged(job: ExtractorJob, batch: Batch,
                  on_track: Callable[[], None] | None = None) -> dict[str, int]:
    counts = extract_batch(job, batch, on_track)
    report.log("%s batch %d/%d: %d extracted, %d failed", job.spec, batch.number,
               batch.total, counts["ok"], counts["failed"])
    return counts


# The same steps as Prefect tasks, each logging what it did. No caching: the store's
# anti-join is what says what is done (a cache would not know a part was deleted or a
# model changed), and the arguments (a loaded model, the writer) are neither hashable
# nor worth persisting.
IN_TASKS = Steps(
    plan=task(_plan_logged, name="plan", task_run_name="plan {extractor.name}",
              cache_policy=NO_CACHE),
    batch=task(_batch_logged, name="extract batch", cache_policy=NO_CACHE,
               task_run_name="extract {job.spec} batch {batch.number}/{batch.total}"),
    device_slot=gpu_slot,
)


def _scan_logged(store: Store, name: str) -> dict:
    summary = run_scan(store, name)
    report.log("%s: %d tracks (%d new, %d changed, %d missing, %d unreadable)", name,
               summary["tracks"], summary["new"], summary["changed"], summary["missing"],
               summary["unreadable"])
    return summary


scan_task = task(_scan_logged, name="scan", task_run_name="scan {name}", cache_policy=NO_CACHE)


def _run_in_flow(store: Store, library: str | None, specs: list[str],
                 settings: ExtractSettings, dask_address: str | None, dask_workers: int) -> dict:
    """`run_extract` as a flow runs it: steps as tasks (the batches spread over a Dask
    cluster when one is given), a progress artifact beside any progress display, and the
    summary as a log line and a table artifact."""
    from mfs.flows.spread import cluster_steps

    with cluster_steps(IN_TASKS, dask_address, dask_workers) as steps:
        result = run_extract(store, library, specs, settings,
                             report.both(DISPLAY.get(), report.artifact_progress), steps)
    report.publish_summary(store, result)
    return result


@flow(name="extract-library", flow_run_name="extract {library}")
def extract_library(library: str, extractors: list[str] = list(DEFAULT_EXTRACTORS),  # noqa: B006
                    batch_size: int | None = None, device: str = "auto",
                    store: str | None = None, rescan: bool = True,
                    tracks_per_part: int = TRACKS_PER_PART, dask_address: str | None = None,
                    dask_workers: int = 0) -> dict:
    """Rescan a library, then extract whatever features it is missing.

    `extractors` are specs (`fma518`, `musicnn-mtt:precision=auto`); `batch_size` is
    windows per model call (None: each extractor's own, `Extractor.default_batch_size`);
    `device` auto, cpu, cuda, cuda:1 or mps; `store` the store root (default $MFS_STORE,
    else data/store); `dask_address` (tcp://HOST:PORT) or `dask_workers` (a local cluster
    of N processes) spread the batches over Dask."""
    the_store = flow_store(store)
    scan = scan_task(the_store, library) if rescan else None
    settings = ExtractSettings(batch_size, device, tracks_per_part)
    return {"scan": scan, **_run_in_flow(the_store, library, extractors, settings,
                                         dask_address, dask_workers)}


@flow(name="backfill-model", flow_run_name="backfill {extractor}")
def backfill_model(extractor: str | list[str], library: str | None = None,
                   batch_size: int | None = None, device: str = "auto",
                   store: str | None = None, tracks_per_part: int = TRACKS_PER_PART,
                   dask_address: str | None = None, dask_workers: int = 0) -> dict:
    """Run (newly added) extractors over every known track of every library (or one).

    `extractor` is one spec or a list of them (what `mfs backfill` passes); the other
    parameters are extract-library's."""
    specs = [extractor] if isinstance(extractor, str) else extractor
    return _run_in_flow(flow_store(store), library, specs,
                        ExtractSettings(batch_size, device, tracks_per_part),
                        dask_address, dask_workers)


__all__ = ["TRACKS_PER_PART", "ExtractSettings", "backfill_model", "extract_library",
           "run_extract"]

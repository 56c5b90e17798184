"""A run's batches spread over a Dask cluster (`mfs extract`/`mfs backfill --dask-workers N`
for a local cluster on one big machine, `--dask-address tcp://HOST:PORT` for an existing
cluster; a deployment run's `dask_workers` / `dask_address` parameters, the same thing).

The store keeps one writer: the run (the flow's process) takes the store lock, plans, and
records the run; each Dask worker only extracts the batches it is given and writes their
parts, new immutable files under the run's deterministic batch names
(`store.batch_part_name`), never the lock, a tracks table, a run record or any other file
that changes. The run totals the counts the batch tasks return.

A worker killed mid-run: Dask runs its batch again elsewhere. Parts are written atomically
(whole or absent), and the re-run batch first reads the parts of its own name that an
earlier attempt stored and extracts only the rest, so no track is stored twice. Before
each part a worker checks that the lock still names the run that handed it the batch, so
a worker outliving its run (an external cluster, the run killed) adds nothing under the
next run's lock.

Workers load each extractor once per process (`_LOADED`), not once per batch. On other
machines they need the same `mfs` installed, and see the store, the libraries and the
model folders by path; `MFS_PATH_MAP` (in a worker's environment) maps the run's paths to
the worker's mounts where they differ.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.settings import PREFECT_API_URL

from mfs.extractors import registry
from mfs.extractors.base import Extractor
from mfs.extractors.device import pick_device
from mfs.extractors.pipeline import RowBuilder
from mfs.flows import report
from mfs.flows.extract import Batch, ExtractorJob, RunKey, Steps, extract_batch
from mfs.flows.settings import ExtractSettings, check_cluster
from mfs.store import Store
from mfs.store.store import StoreWriter

# Loaded extractors of this worker process, by (spec, device): a model is loaded by the
# first batch a worker runs and reused by the next ones, whatever run they belong to.
_LOADED: dict[tuple[str, str], Extractor] = {}
# Row builders by (spec, device, run): a builder hashes the model's files once per run.
_BUILDERS: dict[tuple[str, str, str], RowBuilder] = {}


def require_server(address: str | None) -> None:
    """An external cluster's workers must share the run's Prefect server: refuse, in one
    line, to send them work when none is set (each worker would start a temporary server
    of its own, ~220 MB and 5 s each, that lives as long as the worker)."""
    if address and not PREFECT_API_URL.value():
        raise RuntimeError(
            "--dask-address needs PREFECT_API_URL, a Prefect server the run and every Dask "
            "worker reach (prefect server start --host 0.0.0.0 --port 4200; export "
            "PREFECT_API_URL=http://HOST:4200/api here and on the workers)")


def dask_task_runner(address: str | None, workers: int, api_url: str | None):
    """Prefect's DaskTaskRunner for an existing cluster at `address`, or for a local
    cluster of `workers` single-threaded processes on 127.0.0.1 whose workers use the
    run's Prefect server `api_url` (`run_api_url`)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    env = {"PREFECT_API_URL": api_url} if api_url else {}
    # The scheduler runs in this process: its INFO lines (workers joining and leaving)
    # would flood the run's console and log.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers, "threads_per_worker": 1, "processes": True,
        "host": "127.0.0.1", "dashboard_address": None, "env": env})


def run_api_url() -> str:
    """The Prefect API this process's runs report to: `PREFECT_API_URL`, else the
    temporary server Prefect started for it (a local cluster's workers are sent there,
    so they do not each start one)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


@contextmanager
def cluster_steps(steps: Steps, address: str | None, workers: int) -> Iterator[Steps]:
    """`steps` with the batches spread over the cluster at `address`, or over a local
    cluster of `workers` processes started here and closed on exit; `steps` unchanged
    when neither is given. The flow's own task runner is left alone: the run's other
    steps (scan, plan) stay in its process."""
    check_cluster(address, workers)
    if address or workers:
        with dask_task_runner(address, workers, None if address else run_api_url()) as runner:
            yield replace(steps, spread=partial(spread_batches, runner))
    else:
        yield steps


def spread_batches(runner, job: ExtractorJob, todo: list[Batch], settings: ExtractSettings,
                   on_tracks: Callable[[int], None]) -> Iterator[dict[str, int]]:
    """Submit every batch to `runner`'s Dask workers; yield each one's counts as it ends.

    Only names cross to a worker (the spec, the store root, the run's key and the lock
    holder's pid and host), never the run's loaded objects."""
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    root = str(job.writer.store.root.resolve())
    futures = {}
    for batch in todo:
        future = runner.submit(batch_on_worker, {
            "spec": job.spec, "store_root": root, "run": job.run, "owner": owner,
            "batch": batch, "settings": settings})
        futures[future.task_run_id] = (future, len(batch.tracks))
    for future in as_completed([future for future, _ in futures.values()]):
        counts = future.result()  # a batch that failed fails the run, as in one process
        on_tracks(futures[future.task_run_id][1])
        yield counts


def _batch_on_worker(spec: str, store_root: str, run: RunKey, owner: dict, batch: Batch,
                     settings: ExtractSettings) -> dict[str, int]:
    """One batch, on a Dask worker: the extractor loaded once per worker process."""
    batch = replace(batch, tracks=[(track_id, map_path(path), attempts)
                                   for track_id, path, attempts in batch.tracks])
    job = worker_job(spec, map_path(Path(store_root)), run, owner, settings)
    counts = extract_batch(job, batch)
    report.log("%s batch %d/%d on %s: %d extracted, %d failed", spec, batch.number,
               batch.total, socket.gethostname(), counts["ok"], counts["failed"])
    return counts


batch_on_worker = task(_batch_on_worker, name="extract batch", cache_policy=NO_CACHE,
                       task_run_name="extract {spec} batch {batch.number}/{batch.total}")


def worker_job(spec: str, store_root: Path, run: RunKey, owner: dict,
               settings: ExtractSettings) -> ExtractorJob:
    """An `ExtractorJob` on this worker: the cached loaded extractor, a builder for the
    run, and a writer that only adds parts while `owner` holds the store's lock."""
    key = (spec, settings.device)
    extractor = _LOADED.get(key)
    if extractor is None:
        extractor = registry.create_from_spec(spec)
        extractor.load(pick_device(settings.device))
        _LOADED[key] = extractor
    job = ExtractorJob(spec, extractor, StoreWriter(Store(store_root), owner), run,
                       settings.batch_size_for(extractor))
    builder_key = (*key, run.run_id)
    if builder_key not in _BUILDERS:
        _BUILDERS.clear()  # one run at a time per worker is the usual case: keep one
        _BUILDERS[builder_key] = RowBuilder(extractor, run.run_id)
    job.builder = _BUILDERS[builder_key]
    return job


def map_path(path: Path) -> Path:
    """`path` as this machine sees it: `MFS_PATH_MAP="/run/prefix=/worker/prefix;…"`
    replaces the first matching prefix (a worker whose mounts differ from the run's)."""
    for item in filter(None, os.environ.get("MFS_PATH_MAP", "").split(";")):
        source, _, target = item.partition("=")
        if not target:
            raise ValueError(f"MFS_PATH_MAP entry {item!r} is not /run/prefix=/worker/prefix")
        try:
            return Path(target) / Path(path).relative_to(source)
        except ValueError:
            continue
    return Path(path)

"""Extraction spread over a Dask cluster: 2 real worker processes on 127.0.0.1, results
identical to one process, a worker SIGKILLed mid-run leaving no duplicate or partial
rows, and a batch re-run after its worker died storing only what was missing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from conftest import invoke

from mfs.extractors import registry
from mfs.flows import extract
from mfs.flows.extract import Batch, ExtractorJob, RunKey, batches, run_extract
from mfs.flows.scan import run_scan
from mfs.store import Store
from mfs.store.runs import Run

TESTS = Path(__file__).resolve().parent
PLUGINS = ("energy=energy_extractor:EnergyExtractor,"
           "slow-energy=slow_energy_extractor:SlowEnergyExtractor")


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    """The test extractors, for this process and for the workers it spawns (env)."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("MFS_EXTRACTORS", PLUGINS)
    monkeypatch.setitem(registry.EXTRACTORS, "energy", "energy_extractor:EnergyExtractor")
    monkeypatch.setitem(registry.EXTRACTORS, "slow-energy",
                        "slow_energy_extractor:SlowEnergyExtractor")


@pytest.fixture(scope="module")
def api_url() -> str:
    """This process's Prefect server (PREFECT_API_URL's, else its temporary one, started
    here with a long start-up wait: a busy CI box can take more than Prefect's 20 s, and
    Prefect reads its settings once, at import). `mfs extract` finds it running."""
    from prefect.settings import PREFECT_API_URL

    from mfs.flows.prefect_server import ServerDyingWithParent

    if PREFECT_API_URL.value():
        return PREFECT_API_URL.value()
    server = ServerDyingWithParent()
    server.start(timeout=120)
    return server.api_url


def library(root: Path, tracks: int = 12) -> Path:
    rng = np.random.default_rng(7)
    for i in range(tracks):
        genre = ("alpha", "beta")[i % 2]
        audio = rng.standard_normal(16000 * 2).astype(np.float32) * 0.1
        (root / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / genre / f"{genre}.{i:05d}.wav", audio, 16000)
    return root


def scanned(tmp_path: Path, name: str) -> Store:
    store = Store(tmp_path / name)
    run_scan(store, "lib", "gtzan", library(tmp_path / "music"))
    return store


def features(store: Store, extractor: str) -> dict[str, list]:
    """track_id -> its feature vectors; fails on any duplicate row."""
    table = pq.read_table(sorted((store.features_dir / extractor).glob("*/*.parquet")))
    ids = table.column("track_id").to_pylist()
    assert len(ids) == len(set(ids)), "a track is stored twice"
    vectors = [c for c in table.column_names if c.startswith("energy_")]
    return {row["track_id"]: [row[c] for c in vectors] for row in table.to_pylist()}


def test_two_workers_store_what_one_process_does(tmp_path, api_url):
    alone = scanned(tmp_path, "alone")
    run_extract(alone, "lib", ["energy"], extract.ExtractSettings(tracks_per_part=3))
    spread = scanned(tmp_path, "spread")
    code, out, err = invoke("extract", "lib", "--extractor", "energy", "--no-rescan",
                            "--tracks-per-part", "3", "--dask-workers", "2",
                            "--store", str(spread.root))
    assert code == 0, out + err
    assert "energy: 12 extracted, 0 failed" in out
    assert features(spread, "energy") == features(alone, "energy")
    # Four batches, each its own part, written by worker processes (not the run's).
    parts = sorted((spread.features_dir / "energy").glob("*/*.parquet"))
    assert [p.name.rsplit("-", 2)[-2:] for p in parts] == [
        ["b00001", "c000.parquet"], ["b00002", "c000.parquet"],
        ["b00003", "c000.parquet"], ["b00004", "c000.parquet"]]
    run = spread.connect().execute(
        "SELECT status, counts FROM runs WHERE kind = 'extract'").fetchone()
    assert run[0] == "completed" and '"ok": 12' in run[1]
    assert not (spread.root / ".lock").exists()


def test_backfill_on_two_workers_stores_what_one_process_does(tmp_path, api_url):
    alone = scanned(tmp_path, "alone")
    run_extract(alone, None, ["energy"], extract.ExtractSettings(tracks_per_part=5))
    spread = scanned(tmp_path, "spread")
    code, out, err = invoke("backfill", "--extractor", "energy", "--tracks-per-part", "5",
                            "--dask-workers", "2", "--store", str(spread.root))
    assert code == 0, out + err
    assert "energy: 12 extracted, 0 failed" in out
    assert features(spread, "energy") == features(alone, "energy")
    assert len(list((spread.features_dir / "energy").glob("*/*-b0000[123]-c000.parquet"))) == 3


def test_dask_options_are_checked_once_for_every_command(tmp_path):
    store = scanned(tmp_path, "store")
    for command in (["extract", "lib"], ["backfill"]):
        code, _out, err = invoke(*command, "--extractor", "energy", "--dask-workers", "2",
                                 "--dask-address", "tcp://127.0.0.1:1",
                                 "--store", str(store.root))
        assert code == 1 and "not both" in err and len(err.strip().splitlines()) == 1


def test_dask_address_without_a_server_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    store = scanned(tmp_path, "store")
    code, _out, err = invoke("extract", "lib", "--extractor", "energy",
                             "--dask-address", "tcp://127.0.0.1:1", "--store", str(store.root))
    assert code == 1 and "--dask-address needs PREFECT_API_URL" in err
    assert len(err.strip().splitlines()) == 1


def test_worker_killed_mid_run_leaves_no_duplicates(tmp_path, api_url):
    from distributed import Client, LocalCluster

    store = scanned(tmp_path, "store")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           env={"PREFECT_API_URL": api_url})
    killed: list[int] = []
    finished = threading.Event()
    with cluster, Client(cluster) as client:
        def kill_a_busy_worker() -> None:
            folder = store.features_dir / "slow-energy"
            while not finished.is_set():
                busy = [addr for addr, keys in client.processing().items() if keys]
                if busy and any(folder.glob("*/*.parquet")):
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, 9)
                    killed.append(pid)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        options = {"store": str(store.root), "rescan": False, "tracks_per_part": 2,
                   "dask_address": cluster.scheduler_address}
        try:
            result = extract.extract_library("lib", ["slow-energy"], **options)
        except Exception as error:  # the run may fail; a re-run must then complete it
            result = {"error": error}
        finished.set()
        killer.join()
        assert killed, "no worker was busy while parts were landing"
        again = extract.extract_library("lib", ["slow-energy"], **options)
    print(f"killed worker pid {killed[0]}; first run: "
          f"{result.get('error') or result['extractors']['slow-energy']}")
    if "error" not in result:
        assert result["extractors"]["slow-energy"]["ok"] == 12
        assert again["extractors"]["slow-energy"]["planned"] == 0
    stored = features(store, "slow-energy")
    assert len(stored) == 12
    assert all(len(vector) == 3 and all(v is not None for v in vector)
               for vector in stored.values())
    assert not list(store.root.rglob(".*.tmp"))


def test_a_batch_run_again_stores_only_what_is_missing(tmp_path, monkeypatch):
    """What Dask does after a worker died mid-batch: the same batch of the same run runs
    again; the parts its first attempt stored are kept and their tracks not redone."""
    store = scanned(tmp_path, "store")
    monkeypatch.setattr(extract, "SECONDS_PER_PART", 0.0)  # one part per track
    todo = run_extract.__globals__["plan_missing"](
        store, "lib", registry.create("energy"), 3).todo
    batch: Batch = batches(todo, 12)[0]
    run = Run("extract", "lib", ["energy"])
    with store.writing("test") as writer:
        job = ExtractorJob("energy", registry.create("energy"), writer, RunKey.of(run), 16)
        job.load("cpu")
        seen = 0

        def die_after_five() -> None:
            nonlocal seen
            seen += 1
            if seen == 5:
                raise KeyboardInterrupt  # the worker dies just after its 5th part landed

        with pytest.raises(KeyboardInterrupt):
            extract.extract_batch(job, batch, die_after_five)
        assert len(features(store, "energy")) == 5
        counts = extract.extract_batch(job, batch)
    assert counts == {"ok": 12, "failed": 0}
    assert len(features(store, "energy")) == 12

"""Run records: started / completed / failed rows, killed runs shown as interrupted, parts
flushed by time so a killed slow run keeps its work, and what `mfs status` shows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import invoke, rows, slow_energy_script
from test_extract_flow import energy_registered, scanned_store, stored  # noqa: F401

from mfs.flows.extract import run_extract
from mfs.store import Store


def status_runs(store: Store) -> list[dict]:
    code, out, err = invoke("status", "--format", "json", "--store", str(store.root))
    assert code == 0, err
    return json.loads(out)["runs"]


def history(store: Store, run_id: str) -> list[str]:
    found = rows(store, "SELECT status FROM runs_history WHERE run_id = ? "
                        "ORDER BY finished_at NULLS FIRST", [run_id])
    return [r["status"] for r in found]


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_completed_runs_have_a_started_and_an_end_row(tmp_path: Path) -> None:
    store = scanned_store(tmp_path)
    result = run_extract(store, "lib", ["energy"])
    assert history(store, result["run_id"]) == ["started", "completed"]
    # `runs` is one row per run, its newest: the scan and the extraction, both completed.
    assert [(r["kind"], r["status"]) for r in rows(store, "SELECT * FROM runs ORDER BY "
                                                          "started_at")] == [
        ("scan", "completed"), ("extract", "completed")]
    newest = status_runs(store)[0]
    assert newest["run_id"] == result["run_id"] and newest["status"] == "completed"
    assert newest["extractors"] == ["energy"] and newest["finished_at"]


def test_failed_run_is_recorded_with_a_one_line_reason(tmp_path, monkeypatch) -> None:
    store = scanned_store(tmp_path)

    def broken_load(self, device):
        raise RuntimeError("weights /models/energy.pt are truncated\n(read 10 of 99 bytes)")

    monkeypatch.setattr("energy_extractor.EnergyExtractor.load", broken_load)
    with pytest.raises(RuntimeError, match="truncated"):
        run_extract(store, "lib", ["energy"])
    failed = status_runs(store)[0]
    assert failed["kind"] == "extract" and failed["status"] == "failed"
    assert failed["reason"] == ("RuntimeError: weights /models/energy.pt are truncated "
                                "(read 10 of 99 bytes)")
    assert history(store, failed["run_id"]) == ["started", "failed"]


def test_parts_are_flushed_by_time_as_well_as_by_count(tmp_path, monkeypatch) -> None:
    store = scanned_store(tmp_path)
    monkeypatch.setattr("mfs.flows.extract.SECONDS_PER_PART", 0.0)
    run_extract(store, "lib", ["energy"])  # 6 tracks, far below TRACKS_PER_PART
    assert len(list((store.features_dir / "energy").rglob("*.parquet"))) == 6
    assert len(stored(store)) == 6


def test_killed_run_keeps_its_parts_and_shows_as_interrupted(tmp_path: Path) -> None:
    store = scanned_store(tmp_path, per_genre=6)
    script = slow_energy_script(store, "batch_size=1", seconds_per_part=0.5)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: any((store.features_dir / "energy").rglob("*.parquet")))
        running = status_runs(store)[0]
        assert (running["kind"], running["status"]) == ("extract", "running")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = len(stored(store))
    assert 1 <= kept < 12  # flushed by time, long before a part of 64 tracks
    dead = status_runs(store)[0]
    assert dead["run_id"] == running["run_id"] and dead["status"] == "interrupted"
    assert f"process {proc.pid}" in dead["reason"]
    assert history(store, dead["run_id"]) == ["started"]

    resumed = run_extract(store, "lib", ["energy"])  # takes the dead writer's lock over
    assert resumed["extractors"]["energy"]["ok"] == 12 - kept
    assert [(r["run_id"], r["status"]) for r in status_runs(store)[:2]] == [
        (resumed["run_id"], "completed"), (dead["run_id"], "interrupted")]


def test_status_shows_each_config_beside_its_hash(tmp_path: Path) -> None:
    store = scanned_store(tmp_path)
    run_extract(store, "lib", ["energy", "energy:window_seconds=0.5"])
    code, out, err = invoke("status", "--format", "json", "--store", str(store.root))
    assert code == 0, err
    configs = {r["config_hash"]: json.loads(r["config"]) for r in json.loads(out)["coverage"]}
    assert sorted(c["window_seconds"] for c in configs.values()) == [0.5, 1.0]
    code, out, err = invoke("status", "--store", str(store.root))
    assert code == 0, err
    assert "window_seconds" in out and "Runs" in out and "completed" in out

"""Incremental extraction: plan, extract, retry limits, new configs, kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from conftest import slow_energy_script

from mfs.extractors import registry
from mfs.extractors.base import ExtractorUnavailable
from mfs.flows.extract import ExtractSettings, batches, run_extract
from mfs.flows.scan import run_scan
from mfs.store import Store, schema
from mfs.store.failures import Failure

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def energy_registered(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setitem(registry.EXTRACTORS, "energy", "energy_extractor:EnergyExtractor")


def make_library(root: Path, per_genre: int = 3, corrupt: int = 0) -> Path:
    genres = root / "genres"
    rng = np.random.default_rng(0)
    for genre in ("alpha", "beta"):
        (genres / genre).mkdir(parents=True)
        for i in range(per_genre):
            audio = rng.standard_normal(16000 * 2).astype(np.float32) * 0.1
            sf.write(genres / genre / f"{genre}.{i:05d}.wav", audio, 16000)
    for i in range(corrupt):
        # A valid header (so the scan says ok) over samples that are not numbers.
        audio = np.full(16000, np.nan, dtype=np.float32)
        sf.write(genres / "alpha" / f"alpha.{90 + i:05d}.wav", audio, 16000, subtype="FLOAT")
    return genres


def scanned_store(tmp_path: Path, **kwargs) -> Store:
    store = Store(tmp_path / "store")
    run_scan(store, "lib", "gtzan", make_library(tmp_path / "music", **kwargs))
    return store


def stored(store: Store, view: str = "energy") -> list[tuple]:
    return store.connect().execute(
        f"SELECT track_id, config_hash, count(*) FROM read_parquet('{store.features_dir}/"
        f"{view}/*/*.parquet') GROUP BY ALL ORDER BY ALL").fetchall()


def test_extract_then_rerun_does_nothing(tmp_path, monkeypatch):
    store = scanned_store(tmp_path)
    first = run_extract(store, "lib", ["energy"])
    assert first["extractors"]["energy"]["ok"] == 6
    rows = stored(store)
    assert len(rows) == 6 and all(count == 1 for *_, count in rows)

    def no_decoding(*_args):
        raise AssertionError("a re-run with nothing new must not decode audio")

    monkeypatch.setattr("mfs.extractors.pipeline.open_audio", no_decoding)
    second = run_extract(store, "lib", ["energy"])
    assert second["extractors"]["energy"]["planned"] == 0
    assert stored(store) == rows
    runs = store.connect().execute("SELECT kind, counts FROM runs WHERE kind='extract'").fetchall()
    assert len(runs) == 2


def test_new_config_is_stored_beside_the_old(tmp_path):
    store = scanned_store(tmp_path)
    run_extract(store, "lib", ["energy"])
    run_extract(store, "lib", ["energy:window_seconds=0.5"])
    hashes = {h for _, h, _ in stored(store)}
    assert len(hashes) == 2 and len(stored(store)) == 12
    con = store.connect()
    n_windows = dict(con.execute(
        "SELECT config_hash, max(n_windows) FROM energy GROUP BY ALL").fetchall())
    assert sorted(n_windows.values()) == [2, 4]


def test_bad_spec_and_unknown_extractor_are_clear(tmp_path):
    store = scanned_store(tmp_path)
    with pytest.raises(ValueError, match="window_second=2"):
        run_extract(store, "lib", ["energy:window_second=2"])
    with pytest.raises(KeyError, match="unknown extractor 'nope'"):
        run_extract(store, "lib", ["nope"])


def test_unavailable_extractor_says_how_to_fix(tmp_path, monkeypatch):
    store = scanned_store(tmp_path)
    monkeypatch.setattr("energy_extractor.EnergyExtractor.unavailable_reason",
                        lambda self: "install the weights with X")
    with pytest.raises(ExtractorUnavailable, match="energy: install the weights with X"):
        run_extract(store, "lib", ["energy"])


def test_failed_track_is_retried_up_to_the_limit(tmp_path):
    store = scanned_store(tmp_path, corrupt=1)
    settings = ExtractSettings(max_attempts=2)
    results = [run_extract(store, "lib", ["energy"], settings)["extractors"]["energy"]
               for _ in range(3)]
    assert [r["failed"] for r in results] == [1, 1, 0]
    assert [r["skipped"] for r in results] == [0, 0, 1]
    assert results[0]["ok"] == 6 and results[1]["ok"] == 0
    con = store.connect()
    latest = con.execute("SELECT path, attempts, reason FROM failures_latest "
                         "WHERE stage = 'energy'").fetchall()
    assert len(latest) == 1 and latest[0][1] == 2 and "alpha.00090.wav" in latest[0][0]


def test_batches_cover_the_plan_in_order() -> None:
    todo = [(f"lib:{i}", Path(f"{i}.wav"), 0) for i in range(5)]
    cut = batches(todo, 2)
    assert [(b.number, b.total, len(b.tracks)) for b in cut] == [(1, 3, 2), (2, 3, 2), (3, 3, 1)]
    assert [t for b in cut for t in b.tracks] == todo
    assert batches([], 2) == []


def test_batches_are_parts_and_progress_sees_every_track(tmp_path: Path) -> None:
    store = scanned_store(tmp_path)
    updates: list[tuple[str, int, int]] = []

    @contextmanager
    def progress(label: str, total: int):
        yield lambda done, elapsed: updates.append((label, total, done))

    result = run_extract(store, "lib", ["energy"], ExtractSettings(tracks_per_part=4), progress)
    assert result["extractors"]["energy"]["ok"] == 6
    assert updates == [("energy", 6, done) for done in range(1, 7)]
    parts = sorted(store.features_dir.glob("energy/*/*.parquet"))
    assert sorted(pq.read_metadata(part).num_rows for part in parts) == [2, 4]


def test_failure_record_is_a_failures_row() -> None:
    row = Failure(library="lib", path="a.wav", stage="energy", error_class="AudioError",
                  reason="bad", run_id="r", track_id="lib:a", config_hash="h").row()
    table = pa.Table.from_pylist([row], schema=schema.FAILURES)
    assert set(row) == set(schema.FAILURES.names) and table.num_rows == 1
    assert row["attempts"] == 1 and row["failed_at"].tzinfo is not None


def test_flows_do_not_import_the_console() -> None:
    """Progress reaches the terminal through the callback the CLI passes in."""
    code = "import sys, mfs.flows.extract; sys.exit('mfs.console' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0




def test_killed_run_resumes_without_duplicates_or_loss(tmp_path):
    store = scanned_store(tmp_path, per_genre=6)
    script = slow_energy_script(store, "batch_size=1, tracks_per_part=1")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    part_dir = store.features_dir / "energy"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(part_dir.rglob("*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(stored(store))
    assert 2 <= done_before < 12
    resumed = run_extract(store, "lib", ["energy"])  # takes over the dead writer's lock
    assert resumed["extractors"]["energy"]["ok"] == 12 - done_before
    rows = stored(store)
    assert len(rows) == 12 and all(count == 1 for *_, count in rows)
    assert not list(store.root.rglob("*.tmp"))

"""The store: atomic tables, the single-writer lock, and the DuckDB views over them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import rows

from mfs.store import Store, StoreLocked, schema
from mfs.store.lock import raise_if_locked
from mfs.store.status import store_status

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def track_row(track_id: str, library: str = "lib", **values) -> dict:
    row = dict.fromkeys(schema.TRACKS.names)
    row.update(track_id=track_id, library=library, library_kind="folder", status="ok",
               genres=[], scanned_at=T0, path=f"{track_id}.wav")
    row.update(values)
    return row


def feature_batch(track_ids: list[str], dim: int = 4, extractor: str = "toy-model",
                  config_hash: str = "abc123def456", offset: float = 0.0,
                  created_at: datetime = T0, run_id: str = "run-1") -> pa.Table:
    """A feature batch as extractors write it: key + provenance + fixed-size float32 lists."""
    n = len(track_ids)
    vectors = np.arange(n * dim, dtype=np.float32).reshape(n, dim) + offset
    provenance = {
        "track_id": track_ids, "extractor": [extractor] * n, "config_hash": [config_hash] * n,
        "config": ['{"hop": 1}'] * n, "n_windows": [3] * n, "seconds": [9.0] * n,
        "model_hash": ["none"] * n, "precision": ["none"] * n,
        "versions": ['{"python": "3"}'] * n,
        "created_at": [created_at] * n, "run_id": [run_id] * n,
    }
    table = pa.Table.from_pydict(provenance, schema=schema.FEATURE_KEY_AND_PROVENANCE)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
    table = table.append_column(pa.field("emb_mean", schema.embedding_type(dim)), embedding)
    return table.append_column(pa.field("emb_max", schema.embedding_type(dim)), embedding)


def failure_row(path: str, attempts: int, failed_at: datetime) -> dict:
    return {"track_id": "lib:x", "library": "lib", "path": path, "stage": "toy-model",
            "config_hash": "abc123def456", "error_class": "AudioError", "reason": "bad",
            "attempts": attempts, "failed_at": failed_at, "run_id": "r"}


def test_empty_store_has_all_views(tmp_path: Path) -> None:
    store = Store(tmp_path / "never-written")
    con = store.connect()
    for view in ("tracks", "failures", "failures_latest", "runs", "features"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
    assert store_status(store)["tracks"] == []


def test_views_over_written_tables(store: Store) -> None:
    with store.writing("test") as writer:
        writer.replace_tracks("lib", pa.Table.from_pylist(
            [track_row("lib:a", genre="rock"), track_row("lib:b"),
             track_row("lib:c", status="missing")], schema=schema.TRACKS))
        writer.replace_tracks("other", pa.Table.from_pylist([track_row("other:z", "other")],
                                                            schema=schema.TRACKS))
        writer.append_failures([failure_row("a.wav", 1, T0)])
        writer.append_failures([failure_row("a.wav", 2, T0 + timedelta(hours=1)),
                                failure_row("b.wav", 1, T0)])
        writer.append_run({"run_id": "r1", "kind": "scan", "library": "lib", "extractors": [],
                           "status": "completed", "started_at": T0, "finished_at": T0,
                           "counts": "{}", "versions": "{}", "command": "mfs scan"})
    assert store.libraries() == ["lib", "other"]
    assert rows(store, "SELECT track_id, genre FROM tracks ORDER BY track_id") == [
        {"track_id": "lib:a", "genre": "rock"}, {"track_id": "lib:b", "genre": None},
        {"track_id": "lib:c", "genre": None}, {"track_id": "other:z", "genre": None}]
    assert len(rows(store, "SELECT * FROM failures")) == 3
    latest = rows(store, "SELECT path, attempts FROM failures_latest ORDER BY path")
    assert latest == [{"path": "a.wav", "attempts": 2}, {"path": "b.wav", "attempts": 1}]
    assert rows(store, "SELECT run_id, kind FROM runs") == [{"run_id": "r1", "kind": "scan"}]
    status = store_status(store)
    assert {(r["library"], r["status"], r["tracks"]) for r in status["tracks"]} == {
        ("lib", "ok", 2), ("lib", "missing", 1), ("other", "ok", 1)}
    assert [r["path"] for r in status["recent_failures"]] == ["a.wav", "b.wav"]


def test_replace_tracks_rejects_duplicate_ids_and_keeps_the_old_table(store: Store) -> None:
    with store.writing("test") as writer:
        writer.replace_tracks("lib", pa.Table.from_pylist([track_row("lib:a")],
                                                          schema=schema.TRACKS))
        with pytest.raises(ValueError, match="duplicate track_id"):
            writer.replace_tracks("lib", pa.Table.from_pylist(
                [track_row("lib:b"), track_row("lib:b")], schema=schema.TRACKS))
    assert [r["track_id"] for r in rows(store, "SELECT track_id FROM tracks")] == ["lib:a"]
    assert not list(store.root.rglob("*.tmp"))


def test_per_extractor_view_keeps_newest_row_and_long_view(store: Store) -> None:
    later = T0 + timedelta(minutes=5)
    with store.writing("extract") as writer:
        writer.replace_tracks("lib", pa.Table.from_pylist(
            [track_row("lib:a"), track_row("lib:b"), track_row("lib:c")], schema=schema.TRACKS))
        writer.append_features("toy-model", "abc123def456",
                               feature_batch(["lib:a", "lib:b"]))
        # A retried batch overlapping lib:b: the view must show only its newest row.
        writer.append_features("toy-model", "abc123def456",
                               feature_batch(["lib:b", "lib:c"], offset=100.0,
                                             created_at=later, run_id="run-2"))
        # A second config of the same extractor is a separate key, not a duplicate.
        writer.append_features("toy-model", "fedcba654321",
                               feature_batch(["lib:a"], config_hash="fedcba654321", dim=4))
    assert store.extractors() == ["toy-model"]
    view = rows(store, "SELECT track_id, config_hash, run_id, emb_mean FROM toy_model "
                       "ORDER BY config_hash, track_id")
    assert [(r["track_id"], r["config_hash"], r["run_id"]) for r in view] == [
        ("lib:a", "abc123def456", "run-1"), ("lib:b", "abc123def456", "run-2"),
        ("lib:c", "abc123def456", "run-2"), ("lib:a", "fedcba654321", "run-1")]
    assert view[1]["emb_mean"] == pytest.approx([100.0, 101.0, 102.0, 103.0])
    part = next((store.root / "features" / "toy-model" / "abc123def456").glob("*.parquet"))
    assert pq.read_schema(part).field("emb_mean").type == pa.list_(pa.float32(), 4)

    long = rows(store, "SELECT track_id, extractor, config_hash, output, vector FROM features "
                       "ORDER BY config_hash, track_id, output")
    assert len(long) == 8  # 4 keys x 2 outputs
    assert {r["output"] for r in long} == {"emb_mean", "emb_max"}
    assert {r["extractor"] for r in long} == {"toy-model"}
    b_mean = next(r for r in long if r["track_id"] == "lib:b" and r["output"] == "emb_mean")
    assert b_mean["vector"] == pytest.approx([100.0, 101.0, 102.0, 103.0])

    coverage = store_status(store)["coverage"]
    assert {(r["config_hash"], r["tracks_with_features"], r["ok_tracks"]) for r in coverage} == {
        ("abc123def456", 3, 3), ("fedcba654321", 1, 3)}


def test_append_features_names_missing_provenance(store: Store) -> None:
    table = feature_batch(["lib:a"]).drop_columns(["model_hash", "run_id"])
    with store.writing("extract") as writer, pytest.raises(ValueError) as error:
        writer.append_features("toy-model", "abc123def456", table)
    assert "model_hash" in str(error.value) and "run_id" in str(error.value)
    assert store.extractors() == []


def test_names_that_are_not_plain_are_refused(store: Store) -> None:
    with store.writing("test") as writer, pytest.raises(ValueError, match="invalid library"):
        writer.replace_tracks("../escape", schema.TRACKS.empty_table())
    assert not (store.root.parent / "escape.parquet").exists()


def test_second_writer_is_refused_with_the_holder_named(store: Store) -> None:
    with store.writing("scan lib"):
        with pytest.raises(StoreLocked) as error, store.writing("extract"):
            pass
        message = str(error.value)
        assert f"pid {os.getpid()}" in message and "scan lib" in message
        assert str(store.root / ".lock") in message
    # Released on exit: the next writer gets in.
    with store.writing("again") as writer:
        writer.append_run({"run_id": "r", "kind": "scan", "library": "x", "extractors": [],
                           "status": "completed", "started_at": T0, "finished_at": T0,
                           "counts": "{}", "versions": "{}", "command": ""})
    assert not (store.root / ".lock").exists()


HOLD_LOCK = """
import sys, time
from mfs.store import Store
with Store(sys.argv[1]).writing("held by child") as writer:
    print("locked", flush=True)
    time.sleep(60)
"""


def test_lock_held_by_another_process_then_taken_over_when_it_dies(store: Store) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.root)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLocked) as error, store.writing("second"):
            pass
        assert f"pid {child.pid}" in str(error.value)
        assert "held by child" in str(error.value)
        holder = json.loads((store.root / ".lock").read_text())
        assert holder["pid"] == child.pid and holder["purpose"] == "held by child"
    finally:
        child.kill()
        child.wait()
    # The dead holder's lock file is still there; it is stale and must be taken over.
    assert (store.root / ".lock").exists()
    with store.writing("after the crash"):
        assert json.loads((store.root / ".lock").read_text())["pid"] == os.getpid()


def test_stale_lock_file_of_a_dead_pid_is_taken_over(store: Store) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.root.mkdir(parents=True)
    (store.root / ".lock").write_text(json.dumps({
        "pid": dead.pid, "host": socket.gethostname(), "purpose": "scan old",
        "command": "mfs scan", "since": "2020-01-01 00:00:00"}))
    with store.writing("new writer"):
        assert json.loads((store.root / ".lock").read_text())["purpose"] == "new writer"


def test_lock_left_half_written_by_a_dead_writer_is_taken_over(store: Store) -> None:
    store.root.mkdir(parents=True)
    (store.root / ".lock").write_text('{"pid": ')
    raise_if_locked(store.root)  # a file nobody holds: not a live writer
    with store.writing("new writer"):
        holder = json.loads((store.root / ".lock").read_text())
        assert (holder["pid"], holder["purpose"]) == (os.getpid(), "new writer")
        with pytest.raises(StoreLocked, match="new writer"):
            raise_if_locked(store.root)
    assert not (store.root / ".lock").exists()


CONTEND = """
import os, sys, time
from pathlib import Path
from mfs.store import Store, StoreLocked
root, marker, deadline = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
held = clashes = 0
while time.time() < deadline:
    pass
for _ in range(150):
    try:
        with Store(root).writing("contend"):
            held += 1
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                clashes += 1
                continue
            os.close(fd)
            time.sleep(0.0005)
            os.unlink(marker)
    except StoreLocked:
        pass
print(held, clashes)
"""


def test_concurrent_writers_never_hold_the_lock_together(store: Store, tmp_path: Path) -> None:
    """Writers racing for the lock: at most one may ever be inside `writing()`."""
    start = time.time() + 2.0  # all start contending at the same moment
    children = [subprocess.Popen([sys.executable, "-c", CONTEND, str(store.root),
                                  str(tmp_path / "inside"), str(start)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(6)]
    results = [tuple(map(int, child.communicate(timeout=60)[0].split())) for child in children]
    assert sum(held for held, _ in results) > 0
    assert sum(clashes for _, clashes in results) == 0


def test_atomic_write_leaves_no_temporary_and_a_whole_file(store: Store) -> None:
    table = pa.Table.from_pylist([track_row(f"lib:{i}") for i in range(1000)],
                                 schema=schema.TRACKS)
    with store.writing("test") as writer:
        path = writer.replace_tracks("lib", table)
    assert pq.read_table(path).num_rows == 1000
    assert [p.name for p in path.parent.iterdir()] == ["lib.parquet"]


def test_quotes_in_paths_and_column_names_reach_sql_quoted(tmp_path: Path) -> None:
    """Store and library names cannot hold quotes (`check_name`), but the store's folder
    and the column names inside a Parquet file can: every view still builds and reads."""
    store = Store(tmp_path / """it's a "store\"""")
    batch = feature_batch(["lib:a"])
    batch = batch.rename_columns([*batch.column_names[:-2], """it's "odd\"""", "emb_max"])
    with store.writing("test") as writer:
        writer.replace_tracks("lib", pa.Table.from_pylist([track_row("lib:a")],
                                                          schema=schema.TRACKS))
        writer.append_features("toy-model", "abc123def456", batch)
    (store.root / "features" / "toy-model" / "abc123def456" / "part-x.parquet").write_bytes(b"")
    outputs = rows(store, "SELECT output FROM features ORDER BY output")
    assert outputs == [{"output": "emb_max"}, {"output": """it's "odd\""""}]
    coverage = store_status(store)["coverage"]
    assert [(r["extractor"], r["tracks_with_features"]) for r in coverage] == [("toy-model", 1)]


@pytest.mark.parametrize("table", ["TRACKS", "FAILURES", "RUNS", "LEADERBOARD"])
def test_empty_views_have_the_tables_column_types(table: str) -> None:
    """A table with no parts yet reads as an empty view written in SQL (no Arrow table, so
    no pandas import): its columns and types equal what the Parquet parts read as."""
    import duckdb

    from mfs.store.views import _empty_view

    table_schema = getattr(schema, table)
    con = duckdb.connect()
    _empty_view(con, "empty", table_schema)
    con.register("arrow", table_schema.empty_table())
    described = [con.execute(f"DESCRIBE {name}").fetchall() for name in ("empty", "arrow")]
    assert [row[:2] for row in described[0]] == [row[:2] for row in described[1]]

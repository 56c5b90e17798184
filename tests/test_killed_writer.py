"""A writer killed with SIGKILL in the middle of writing must leave a readable store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from conftest import rows

from mfs.store import Store

# Writes big tracks tables and feature batches in a loop until it is killed. Every batch
# has new track IDs, so any duplicate key a reader sees would come from a torn write.
WRITER = """
import os
import sys
from datetime import UTC, datetime
import numpy as np
import pyarrow as pa
from mfs.store import Store, schema

store = Store(sys.argv[1])
n = 40_000
with store.writing("killed writer") as writer:
    for batch in range(1_000_000):
        ids = [f"lib:{os.getpid()}-{batch}-{i}" for i in range(n)]
        columns = {name: [None] * n for name in schema.TRACKS.names}
        columns.update(track_id=ids, library=["lib"] * n, status=["ok"] * n,
                       genres=[[]] * n, path=[f"{i}.wav" for i in range(n)])
        writer.replace_tracks("lib", pa.Table.from_pydict(columns, schema=schema.TRACKS))
        now = datetime.now(UTC)
        provenance = {"track_id": ids, "extractor": ["toy"] * n, "config_hash": ["c0"] * n,
                      "config": ["{}"] * n, "n_windows": [1] * n, "seconds": [1.0] * n,
                      "model_hash": ["none"] * n, "precision": ["none"] * n,
                      "versions": ["{}"] * n,
                      "created_at": [now] * n, "run_id": [str(batch)] * n}
        table = pa.Table.from_pydict(provenance, schema=schema.FEATURE_KEY_AND_PROVENANCE)
        values = pa.array(np.random.default_rng(batch).random(n * 16, dtype=np.float32))
        table = table.append_column(pa.field("emb_mean", schema.embedding_type(16)),
                                    pa.FixedSizeListArray.from_arrays(values, 16))
        writer.append_features("toy", "c0", table)
        print(batch, flush=True)
"""


def kill_mid_write(root: Path) -> list[Path]:
    """Start the writer, let it commit one batch, then SIGKILL it while a file of the
    next batch is being written (its temporary exists). Returns the temporaries left."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(root)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "0"
        deadline = time.monotonic() + 20
        while not list(root.rglob("*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    return list(root.rglob("*.tmp"))


def assert_readable_without_duplicates(store: Store) -> None:
    for part in store.root.rglob("*.parquet"):
        pq.read_table(part)  # raises on a torn file
    counts = rows(store, "SELECT count(*) AS n, count(DISTINCT track_id) AS ids FROM tracks")
    assert counts[0]["n"] == counts[0]["ids"] > 0
    raw = rows(store, "SELECT count(*) AS n, count(DISTINCT track_id) AS ids FROM "
                      f"read_parquet('{store.root}/features/toy/c0/*.parquet')")[0]
    assert raw["n"] == raw["ids"] > 0
    view = rows(store, "SELECT count(*) AS n FROM toy")[0]
    assert view["n"] == raw["n"]
    assert rows(store, "SELECT count(*) AS n FROM features")[0]["n"] == raw["n"]


def test_sigkill_mid_write_leaves_a_readable_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    left = []
    for _ in range(2):
        left += kill_mid_write(store.root)
        assert_readable_without_duplicates(store)
    assert left, "the writer was never caught mid-write; the test proved nothing"
    # The killed writer's lock and temporaries are left behind; the next writer takes the
    # lock over and clears the temporaries, and readers never saw them.
    assert (store.root / ".lock").exists()
    with store.writing("after the kill"):
        assert not list(store.root.rglob("*.tmp"))
    assert_readable_without_duplicates(store)

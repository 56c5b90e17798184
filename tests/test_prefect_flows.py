"""`mfs extract` / `mfs backfill` as a user runs them: Prefect ephemeral mode and a server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import api_post

TESTS = Path(__file__).resolve().parent
MFS = Path(sys.executable).parent / "mfs"


def make_gtzan(root: Path, n: int = 3) -> Path:
    for genre in ("alpha", "beta"):
        (root / genre).mkdir(parents=True)
        for i in range(n):
            audio = np.sin(np.arange(16000 * 2) * (0.05 + 0.01 * i)).astype(np.float32) * 0.3
            sf.write(root / genre / f"{genre}.{i:05d}.wav", audio, 16000)
    return root


@pytest.fixture
def env(prefect_env):
    return prefect_env


def mfs(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MFS), *args], env=env, capture_output=True, text=True,
                          timeout=240)


def coverage(env: dict) -> dict:
    status = json.loads(mfs(env, "status", "--format", "json").stdout)
    return {(c["library"], c["config_hash"]): c["tracks_with_features"]
            for c in status["coverage"]}


def test_extract_and_backfill_in_ephemeral_mode(tmp_path, env):
    env.pop("PREFECT_API_URL", None)
    assert mfs(env, "scan", str(make_gtzan(tmp_path / "a")), "--kind", "gtzan",
               "--name", "a").returncode == 0
    assert mfs(env, "scan", str(make_gtzan(tmp_path / "b", 2)), "--kind", "gtzan",
               "--name", "b").returncode == 0
    first = mfs(env, "extract", "a", "--extractor", "energy")
    assert first.returncode == 0, first.stderr
    assert "energy: 6 extracted, 0 failed" in first.stdout
    again = mfs(env, "extract", "a", "--extractor", "energy")
    assert "energy: 0 extracted" in again.stdout and "nothing missing" in again.stdout
    backfill = mfs(env, "backfill", "--extractor", "energy:window_seconds=0.5")
    assert backfill.returncode == 0, backfill.stderr
    assert "10 extracted" in backfill.stdout
    assert sorted(coverage(env).values()) == [4, 6, 6]


FLOW_CALL = """
import sys
from mfs.flows.extract import extract_library
print(extract_library("a", ["energy:window_seconds=0.5"], tracks_per_part=4,
                      store=sys.argv[1]))
"""


def test_extract_with_a_prefect_server(tmp_path, env, prefect_server):
    env["PREFECT_API_URL"] = prefect_server
    assert mfs(env, "scan", str(make_gtzan(tmp_path / "a")), "--kind", "gtzan",
               "--name", "a").returncode == 0
    result = mfs(env, "extract", "a", "--extractor", "energy")
    assert result.returncode == 0, result.stderr
    assert "energy: 6 extracted" in result.stdout
    assert "Starting temporary server" not in result.stdout + result.stderr
    runs = api_post(prefect_server, "flow_runs/filter")
    assert any(r["state_type"] == "COMPLETED" for r in runs)
    # The flow as a deployment would call it: it rescans, and settings are one parameter.
    flow = subprocess.run([sys.executable, "-c", FLOW_CALL, str(tmp_path / "store")], env=env,
                          capture_output=True, text=True, timeout=240)
    assert flow.returncode == 0 and "'ok': 6" in flow.stdout, flow.stderr
    # The flow reads as its recipe: scan, a plan task per extractor, one task per batch
    # (the server records task runs from events, a moment after the flow ends).
    expected = {"plan energy", "extract energy batch 1/1", "scan a",
                "extract energy:window_seconds=0.5 batch 2/2"}
    deadline = time.monotonic() + 30
    while not expected <= (names := {r["name"] for r in
                                     api_post(prefect_server, "task_runs/filter")}):
        assert time.monotonic() < deadline, names
        time.sleep(0.5)

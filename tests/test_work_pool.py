"""The shipped prefect.yaml, deployed as its header and the README say: a real Prefect
server, a process work pool, `prefect deploy --all`, a process worker, and
`prefect deployment run` of the deployments it declares (the library is named `gtzan`,
as in the file).

About 60 s on an idle 2-core machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import PREFECT, REPO, rows, stop_group
from test_serve import library

from mfs.flows.scan import run_scan
from mfs.store import Store


def prefect(env: dict, cwd: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run([str(PREFECT), *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_shipped_prefect_yaml_runs_on_a_process_worker(tmp_path, prefect_env, prefect_server):
    store = Store(tmp_path / "store")
    run_scan(store, "gtzan", "folder", library(tmp_path / "music", 3))
    work = tmp_path / "work"  # where `prefect deploy` runs: the runs' working directory
    work.mkdir()
    env = {**prefect_env, "PREFECT_API_URL": prefect_server, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PWD": str(work)}
    env.pop("MFS_STORE")  # the deployments' store comes from prefect.yaml, not the worker
    prefect(env, work, "work-pool", "create", "mfs", "--type", "process")
    prefect(env, work, "work-pool", "set-concurrency-limit", "mfs", "1")
    prefect({**env, "MFS_STORE": str(store.root)}, work, "--no-prompt", "deploy", "--all",
            "--prefect-file", str(REPO / "prefect.yaml"))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([str(PREFECT), "worker", "start", "--pool", "mfs"], env=env,
                                  cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        def run(deployment: str, *params: str) -> None:
            args = [p for param in params for p in ("--param", param)]
            output = prefect(env, work, "deployment", "run", deployment, *args, "--watch",
                             "--watch-interval", "1", timeout=240)
            assert "Completed" in output, output + log.read_text()

        run("extract-library/gtzan", 'extractors=["fma518"]', "device=cpu")
        features = rows(store, "SELECT track_id FROM fma518")
        assert len(features) == 3 == len({r["track_id"] for r in features})
        run("extract-library/gtzan", 'extractors=["fma518"]', "device=cpu")
        counts = [json.loads(r["counts"]) for r in rows(
            store, "SELECT counts FROM runs WHERE kind = 'extract' ORDER BY started_at")]
        assert [c["fma518"]["ok"] for c in counts] == [3, 0]  # the second added nothing

        # The export writes its relative `out` into the directory deploy ran in; the
        # folder library has no genres: its tracks are exported without a split.
        run("export-training-table/gtzan")
        table = pq.read_table(work / "train.parquet")
        assert table.num_rows == 3 and set(table.column("split").to_pylist()) == {None}
    finally:
        stop_group(worker)


def test_a_deployment_without_store_refuses_in_one_line():
    from mfs.flows.settings import flow_store

    with pytest.raises(ValueError, match=r"^the run's store parameter is empty[^\n]*MFS_STORE"):
        flow_store("")

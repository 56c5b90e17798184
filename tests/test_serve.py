"""`mfs serve` against a real Prefect server: deployments per library (one scanned after
start-up too), runs triggered with `prefect deployment run`, two runs at once.

Under ~90 s on an idle 2-core machine; much longer when it is loaded."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
from pathlib import Path

import pytest
from conftest import MFS, PREFECT, api_get, api_post, stop_group, wait, write_audio

from mfs.flows.scan import run_scan
from mfs.store import Store

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def library(root: Path, n: int) -> Path:
    for i in range(n):
        write_audio(root / f"t{i}.wav", seconds=1.0, rate=16000, freq=200.0 + 50 * i)
    return root


def deployment(url: str, name: str) -> dict | None:
    try:
        return api_get(url, f"deployments/name/{name}")
    except urllib.error.HTTPError:
        return None


def energy_rows(store: Store, library_name: str) -> list[str]:
    with store.connect() as con:
        return [r[0] for r in con.execute(
            "SELECT track_id FROM energy JOIN tracks USING (track_id) WHERE library = ?",
            [library_name]).fetchall()]


def test_serve_needs_a_prefect_server(prefect_env):
    prefect_env.pop("PREFECT_API_URL", None)
    result = subprocess.run([str(MFS), "serve"], env=prefect_env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "PREFECT_API_URL" in result.stderr


def test_served_deployments_run_incrementally(tmp_path, prefect_env, prefect_server):
    env = {**prefect_env, "PREFECT_API_URL": prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    store = Store(tmp_path / "store")
    run_scan(store, "a", "folder", library(tmp_path / "music-a", 3))
    (store.root / "mfs.toml").write_text('[schedules]\na = "0 2 * * *"\n')
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(MFS), "serve", "--watch-seconds", "1"], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        found = wait("extract-library/a was not deployed", 60,
                     lambda: serve.poll() is None and deployment(prefect_server,
                                                                 "extract-library/a")
                     or (serve.poll() is not None and pytest.fail(log.read_text())))
        assert [s["schedule"]["cron"] for s in found["schedules"]] == ["0 2 * * *"]
        assert found["parameters"]["store"] == str(store.root.resolve())
        assert api_get(prefect_server, "v2/concurrency_limits/gpu")["limit"] == 1

        # A user's run: the CLI, with parameters, watched until it ends.
        first = subprocess.run(
            [str(PREFECT), "deployment", "run", "extract-library/a", "--param",
             'extractors=["energy"]', "--param", "batch_size=4", "--param", "device=cpu",
             "--watch", "--watch-interval", "1"],
            env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0 and "Completed" in first.stdout, first.stdout + log.read_text()
        assert len(energy_rows(store, "a")) == 3
        run_a = api_post(prefect_server, "flow_runs/filter",
                         {"deployments": {"name": {"any_": ["a"]}}})[0]
        artifacts = api_post(prefect_server, "artifacts/filter",
                             {"artifacts": {"flow_run_id": {"any_": [run_a["id"]]}}})
        assert {a["type"] for a in artifacts} == {"progress", "table"}
        table = json.loads(next(a["data"] for a in artifacts if a["type"] == "table"))
        assert table[0]["extracted"] == 3 and table[0]["failed"] == 0

        # A library scanned now gets its deployment from the running `mfs serve`.
        run_scan(store, "b", "folder", library(tmp_path / "music-b", 2))
        b = wait("extract-library/b was not deployed", 30,
                 lambda: deployment(prefect_server, "extract-library/b"))
        params = {"parameters": {"extractors": ["energy"], "device": "cpu"}}
        runs = [api_post(prefect_server, f"deployments/{b['id']}/create_flow_run", params)["id"]
                for _ in range(2)]  # two runs of b at once: the second waits its turn

        def ended() -> list[dict]:
            rows = api_post(prefect_server, "flow_runs/filter",
                            {"flow_runs": {"id": {"any_": runs}}})
            return rows if all(r["state_type"] in TERMINAL for r in rows) else []

        b_runs = sorted(wait("the runs of b did not end", 240, ended),
                        key=lambda r: r["start_time"])
        assert {r["state_type"] for r in b_runs} == {"COMPLETED"}, log.read_text()
        assert b_runs[0]["end_time"] <= b_runs[1]["start_time"]
        # The store is consistent: each track once; the second run found nothing to do.
        assert sorted(energy_rows(store, "b")) == sorted(set(energy_rows(store, "b")))
        assert len(energy_rows(store, "b")) == 2 and len(energy_rows(store, "a")) == 3
        with store.connect() as con:
            counts = [json.loads(c) for (c,) in con.execute(
                "SELECT counts FROM runs WHERE kind = 'extract' AND library = 'b' "
                "ORDER BY started_at").fetchall()]
        assert [c["energy"]["ok"] for c in counts] == [2, 0]
        # Run logs reach the server in batches, possibly after the run's final state.
        wait("the second run's log did not say 'nothing to do'", 60, lambda: [
            entry for entry in api_post(prefect_server, "logs/filter", {"logs": {
                "flow_run_id": {"any_": [b_runs[1]["id"]]}}})
            if entry["message"].startswith("nothing to do")])
    finally:
        stop_group(serve)


def test_config_is_read_and_refused_in_one_line(tmp_path):
    from mfs.flows.serve_config import read_config

    assert read_config(tmp_path).schedules == {}  # no mfs.toml: nothing scheduled
    (tmp_path / "mfs.toml").write_text(
        'timezone = "Europe/Berlin"\n[schedules]\ngtzan = "0 2 * * *"\n'
        '[defaults]\nextractors = ["fma518"]\n')
    config = read_config(tmp_path)
    assert config.schedules == {"gtzan": "0 2 * * *"} and config.timezone == "Europe/Berlin"
    assert config.defaults == {"extractors": ["fma518"]}
    for text, words in (('[schedules]\ngtzan = "nightly"\n', "not a cron"),
                        ("[defaults]\ndevise = 'cpu'\n", "defaults.devise"),
                        ("[schedule]\n", "unknown keys"),
                        ('[defaults]\ndask_workers = 2\ndask_address = "tcp://h:1"\n',
                         "not both")):
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(ValueError, match=words):
            read_config(tmp_path, tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="does not exist"):
        read_config(tmp_path, tmp_path / "missing.toml")


def test_an_edited_config_applies_without_a_restart(tmp_path, prefect_env, prefect_server):
    """Schedules and defaults follow mfs.toml while serving; a broken edit is one line and
    changes nothing; a default `dask_workers` makes the runs spread over a local cluster."""
    env = {**prefect_env, "PREFECT_API_URL": prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    store = Store(tmp_path / "store")
    run_scan(store, "a", "folder", library(tmp_path / "music-a", 2))
    config = store.root / "mfs.toml"
    config.write_text('[schedules]\na = "0 2 * * *"\n')
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(MFS), "serve", "--watch-seconds", "1"], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def crons() -> list[str] | None:
        found = deployment(prefect_server, "extract-library/a")
        return found and [s["schedule"]["cron"] for s in found["schedules"]]

    try:
        wait("extract-library/a was not deployed", 60,
             lambda: crons() == ["0 2 * * *"] or (serve.poll() is not None
                                                  and pytest.fail(log.read_text())))
        config.write_text('[schedules]\na = "30 3 * * *"\n[defaults]\ndask_workers = 2\n')
        wait("the new cron was not applied", 60, lambda: crons() == ["30 3 * * *"])
        assert deployment(prefect_server, "extract-library/a")["parameters"]["dask_workers"] == 2
        wait("the new default did not reach backfill-model/energy", 60, lambda: deployment(
            prefect_server, "backfill-model/energy")["parameters"].get("dask_workers") == 2)

        config.write_text('[schedules]\na = "30 3 * *\n')  # unterminated string
        wait("the broken edit was not reported", 60, lambda: "not valid TOML" in log.read_text())
        time.sleep(3)  # a few more rounds: said once, serving on, the old schedule kept
        errors = [line for line in log.read_text().splitlines() if "not valid TOML" in line]
        assert len(errors) == 1 and str(config) in errors[0] and "keeping" in errors[0]
        assert serve.poll() is None and crons() == ["30 3 * * *"]

        config.write_text("[defaults]\ndask_workers = 2\n")  # a's schedule removed
        wait("the removed schedule was not cleared", 60, lambda: crons() == [])

        # A served run with the config's default: its batches on 2 local Dask workers.
        run = subprocess.run(
            [str(PREFECT), "deployment", "run", "extract-library/a", "--param",
             'extractors=["energy"]', "--param", "device=cpu", "--param", "tracks_per_part=1",
             "--watch", "--watch-interval", "1"],
            env=env, capture_output=True, text=True, timeout=400)
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + log.read_text()
        assert len(energy_rows(store, "a")) == 2
        run_id = api_post(prefect_server, "flow_runs/filter",
                          {"deployments": {"name": {"any_": ["a"]}}})[0]["id"]
        wait("no batch was logged from a Dask worker", 60, lambda: [
            entry for entry in api_post(prefect_server, "logs/filter", {"logs": {
                "flow_run_id": {"any_": [run_id]}}})
            if " on " in entry["message"] and "batch 2/2" in entry["message"]])
    finally:
        stop_group(serve)

"""The `mfs` command line: scan, status, sql, demo, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import invoke, run_mfs, write_audio

from mfs.store import Store


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    write_audio(root / "a" / "one.wav", freq=800)
    write_audio(root / "b" / "two.flac", freq=810)
    (root / "broken.wav").write_bytes(b"RIFF not really")
    return root


def test_scan_status_and_sql_as_a_user_runs_them(library: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    result = run_mfs("scan", str(library), "--kind", "folder", "--name", "mine",
                     "--store", store)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress noise when stderr is not a terminal
    assert "scanned mine: 3 tracks" in result.stdout and "1 unreadable" in result.stdout

    result = run_mfs("status", "--format", "json", "--store", store)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["store"] == store
    assert {(r["library"], r["status"], r["tracks"]) for r in status["tracks"]} == {
        ("mine", "ok", 2), ("mine", "unreadable", 1)}
    assert [f["path"] for f in status["recent_failures"]] == ["broken.wav"]

    result = run_mfs("sql", "SELECT path, status FROM tracks ORDER BY path", "--format", "csv",
                     "--store", store)
    assert result.returncode == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["path", "status"], ["a/one.wav", "ok"], ["b/two.flac", "ok"],
        ["broken.wav", "unreadable"]]


def test_rescan_by_name_and_outputs(library: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert invoke("scan", str(library), "--kind", "folder", "--name", "mine",
                  "--store", store)[0] == 0
    code, out, _ = invoke("scan", "--name", "mine", "--store", store)
    assert code == 0 and "3 unchanged" in out

    code, out, _ = invoke("sql", "SELECT library, count(*) AS n FROM tracks GROUP BY ALL",
                          "--format", "json", "--store", store)
    assert code == 0 and json.loads(out) == [{"library": "mine", "n": 3}]
    code, out, _ = invoke("sql", "SELECT count(*) AS n FROM runs", "--store", store)
    assert code == 0 and "n" in out and "2" in out
    code, out, _ = invoke("status", "--store", store)
    assert code == 0 and "mine" in out and "unreadable" in out and "Recent failures" in out


def test_store_from_environment(library: Path, tmp_path: Path) -> None:
    code, _, err = invoke("scan", str(library), "--kind", "folder", "--name", "mine",
                          env={"MFS_STORE": str(tmp_path / "env-store")})
    assert code == 0, err
    assert Store(tmp_path / "env-store").libraries() == ["mine"]


@pytest.mark.parametrize(("args", "words"), [
    (["scan", "{lib}", "--kind", "mp4", "--name", "x"], ["--kind", "mp4", "gtzan"]),
    (["scan", "{tmp}/no/such/folder", "--kind", "folder", "--name", "x"],
     ["no/such/folder", "does not exist"]),
    (["scan", "--name", "never-scanned"], ["unknown library", "never-scanned"]),
    (["scan", "{lib}", "--name", "x"], ["--kind"]),
    (["scan", "{lib}", "--kind", "folder", "--name", "../bad name"], ["invalid library"]),
    (["scan", "{lib}", "--kind", "folder", "--name", "x", "--metadata", "{tmp}"],
     ["--metadata does not apply to --kind folder (it takes no options)"]),
    (["scan", "{lib}", "--kind", "fma", "--name", "x", "--split-dir", "{tmp}"],
     ["--split-dir does not apply to --kind fma (it takes --metadata)"]),
    (["sql", "SELECT * FROM no_such_table"], ["SQL failed", "no_such_table"]),
    (["sql", "SELEC oops"], ["SQL failed"]),
])
def test_errors_are_one_line_on_stderr(library: Path, tmp_path: Path, args: list[str],
                                       words: list[str]) -> None:
    args = [a.format(lib=library, tmp=tmp_path) for a in args]
    code, out, err = invoke(*args, "--store", str(tmp_path / "store"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0]
    assert out == ""


def test_scan_help_lists_the_library_kinds_of_the_registry() -> None:
    from mfs.libraries.registry import KINDS

    code, out, _ = invoke("scan", "--help")
    assert code == 0 and f"Library kind: {', '.join(KINDS)}." in " ".join(out.split())


def test_long_error_stays_one_line_from_the_real_command(tmp_path: Path) -> None:
    missing = tmp_path / ("a-rather-long-folder-name-" * 6) / "music"
    result = run_mfs("sql", "SELECT * FROM tracks WHERE nonsense_column_" + "x" * 80,
                     "--store", str(missing))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: SQL failed")


def test_locked_store_is_one_line_naming_the_holder_and_readers_still_work(
        library: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert invoke("scan", str(library), "--kind", "folder", "--name", "mine",
                  "--store", str(store.root))[0] == 0
    with store.writing("extract mine"):
        code, _, err = invoke("scan", "--name", "mine", "--store", str(store.root))
        assert code != 0
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "locked" in lines[0]
        assert f"pid {os.getpid()}" in lines[0] and "extract mine" in lines[0]
        # Readers never take the lock.
        code, out, _ = invoke("sql", "SELECT count(*) AS n FROM tracks", "--format", "json",
                              "--store", str(store.root))
        assert code == 0 and json.loads(out) == [{"n": 3}]
        assert invoke("status", "--format", "json", "--store", str(store.root))[0] == 0
    assert len(store.read_tracks("mine")) == 3


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    """`mfs demo` as the README runs it: library, scan, Prefect extraction, benchmark,
    leaderboard and report, all under the working directory; a second run redoes nothing."""
    env = {"PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    first = run_mfs("demo", cwd=tmp_path, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert len(list((tmp_path / "data" / "demo").rglob("*.wav"))) == 40
    store = Store(tmp_path / "data" / "store")
    tracks = store.read_tracks("demo").to_pylist()
    assert len(tracks) == 40 and {t["status"] for t in tracks} == {"ok"}
    assert {t["genre"] for t in tracks} == {"pulse", "drone", "chirp", "clatter"}
    assert {t["split"] for t in tracks} == {"train", "validation", "test"}
    con = store.connect()
    coverage = dict(con.execute("SELECT extractor, count(*) FROM features "
                                "WHERE output IN ('features', 'tags_mean') GROUP BY 1").fetchall())
    assert coverage == {"fma518": 40, "musicnn-mtt": 40}
    assert con.execute("SELECT count(*) FROM leaderboard").fetchone()[0] == 8
    assert "Leaderboard" in first.stdout and "generated test signals" in first.stdout
    assert "report written to data/demo-report/index.html" in first.stdout
    assert (tmp_path / "data" / "demo-report" / "index.html").stat().st_size > 1000

    again = run_mfs("demo", cwd=tmp_path, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("0 tracks extracted") == 2


def test_edited_plugin_extractor_is_a_new_output_and_status_says_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plug-in without a `version` is identified by its source file: editing it changes
    its config hash, and `mfs status` flags the rows the old code computed as stale."""
    plugin = tmp_path / "plugins" / "energy_plugin.py"
    plugin.parent.mkdir()
    shutil.copy(Path(__file__).parent / "energy_extractor.py", plugin)
    monkeypatch.syspath_prepend(str(plugin.parent))
    env = {"MFS_EXTRACTORS": "energy=energy_plugin:EnergyExtractor"}
    write_audio(tmp_path / "music" / "one.wav", seconds=1.0, freq=700)
    store = str(tmp_path / "store")
    assert invoke("scan", str(tmp_path / "music"), "--kind", "folder", "--name", "lib",
                  "--store", store)[0] == 0

    def extract_and_status() -> dict:
        code, out, err = invoke("extract", "lib", "-e", "energy", "--store", store, env=env)
        assert code == 0 and "energy: 1 extracted" in out, out + err
        code, out, err = invoke("status", "--format", "json", "--store", store, env=env)
        assert code == 0, err
        return json.loads(out)

    from energy_plugin import EnergyExtractor

    first = EnergyExtractor().config_hash()
    status = extract_and_status()
    assert [(r["config_hash"], r["stale"]) for r in status["coverage"]] == [(first, False)]
    assert status["stale"] is None

    plugin.write_text(plugin.read_text() + "\n# the embedding changed\n")
    second = EnergyExtractor().config_hash()
    assert second != first
    status = extract_and_status()
    assert {(r["config_hash"], r["stale"]) for r in status["coverage"]} == {
        (first, True), (second, False)}
    assert status["stale"] == (
        f"stale: energy@{first} computed by older extractor code; `mfs extract LIB "
        "--extractor SPEC` re-extracts (old rows stay until removed)")
    code, out, _ = invoke("status", "--store", store, env=env)
    assert code == 0 and f"stale: energy@{first}" in out

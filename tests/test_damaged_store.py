"""Damaged store files: one bad Parquet file must not take every command down. Readers leave
it out and say so in one line, `mfs doctor` lists it, `mfs repair` moves it aside (never
deleting) and says what the next runs redo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import feature_rows, run_mfs, scan, write_audio

from mfs.store import Store
from mfs.store.health import explain_error

PART = "part-20261207T010203000000-deadbeef.parquet"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def mfs(store: Store, *args: str, env: dict[str, str] | None = None):
    return run_mfs(*args, "--store", str(store.root), env=env)


@pytest.fixture
def damaged(tmp_path: Path, store: Store) -> dict[str, Path]:
    """Libraries `a` (4 tracks, toy features in two parts) and `b`; then one damaged file in
    each table: a cut-short feature part, garbage tracks of `b`, a 0-byte runs part, and
    garbage failures and leaderboard parts. Returns library a's track IDs and each
    damaged file by table."""
    for i in range(4):
        write_audio(tmp_path / "a" / f"t{i}.wav", freq=300 + 40 * i)
    write_audio(tmp_path / "b" / "u.wav", freq=900)
    (tmp_path / "b" / "empty.wav").write_bytes(b"")  # a scan failure part
    scan(store, "a", "folder", tmp_path / "a")
    scan(store, "b", "folder", tmp_path / "b")
    ids = sorted(r.as_py() for r in store.read_tracks("a").column("track_id"))
    with store.writing("test") as writer:
        kept = writer.append_features("toy", "c0", feature_rows(ids[:2]))
        cut = writer.append_features("toy", "c0", feature_rows(ids[2:]))
    cut.write_bytes(cut.read_bytes()[:200])
    files = {"features": cut, "tracks": store.tracks_dir / "b.parquet",
             "runs": sorted(store.runs_dir.glob("*.parquet"))[0],
             "failures": sorted(store.failures_dir.glob("*.parquet"))[0],
             "leaderboard": store.leaderboard_dir / PART}
    files["tracks"].write_bytes(b"not parquet at all\n")
    files["runs"].write_bytes(b"")
    files["failures"].write_bytes(b"PAR1" + b"\0" * 100)
    files["leaderboard"].parent.mkdir()
    files["leaderboard"].write_bytes(kept.read_bytes()[:-20])
    assert kept.exists()
    return {"ids": ids, **files}


def test_readers_leave_damaged_files_out_and_say_so(store: Store, damaged: dict) -> None:
    result = mfs(store, "sql", "select 1 AS one", "--format", "json")
    assert result.returncode == 0 and json.loads(result.stdout) == [{"one": 1}]
    warning = one_line(result.stderr)
    assert "damaged store file" in warning and "and 4 more left out of the views" in warning
    assert f"`mfs repair --store {store.root}`" in warning

    status = mfs(store, "status")
    assert status.returncode == 0, status.stderr
    assert "damaged" in one_line(status.stderr) and "mfs repair" in status.stderr
    assert "5 damaged store file(s) left out of every query" in status.stdout

    toy = mfs(store, "sql", "select track_id from toy order by 1", "--format", "json")
    assert [r["track_id"] for r in json.loads(toy.stdout)] == damaged["ids"][:2]
    stats = mfs(store, "stats", "toy", "--format", "json")  # reads the parts' footers too
    assert stats.returncode == 0, stats.stderr
    assert "damaged store file" in one_line(stats.stderr)

    assert mfs(store, "scan", "--name", "a").returncode == 0  # another library
    refused = mfs(store, "scan", "--name", "b")
    assert refused.returncode == 1
    line = one_line(refused.stderr)
    assert f"store file {damaged['tracks']} is damaged" in line
    assert f"`mfs repair --store {store.root}`" in line
    assert f"`mfs scan --name b --store {store.root}`" in line
    assert damaged["tracks"].read_bytes() == b"not parquet at all\n"  # not replaced


def test_doctor_lists_and_repair_quarantines(store: Store, damaged: dict) -> None:
    originals = {table: damaged[table].read_bytes() for table in
                 ("features", "tracks", "runs", "failures", "leaderboard")}
    doctor = mfs(store, "doctor", "--format", "json")
    assert doctor.returncode == 1
    listed = {row["file"]: row for row in json.loads(doctor.stdout)}
    rel = {table: damaged[table].relative_to(store.root).as_posix() for table in originals}
    assert set(listed) == set(rel.values())
    assert listed[rel["tracks"]]["held"] == "the tracks of library 'b' (row count unknown)"
    assert listed[rel["features"]]["held"].startswith("toy features, config c0")
    assert "cut short" in listed[rel["features"]]["problem"]
    assert listed[rel["runs"]]["problem"] == "empty file (0 bytes)"
    assert "written 2026-12-07 01:02:03 UTC" in listed[rel["leaderboard"]]["held"]

    repair = mfs(store, "repair")
    assert repair.returncode == 0, repair.stderr
    quarantined = list((store.root / "quarantine").iterdir())
    assert len(quarantined) == 1
    for table, data in originals.items():
        assert not damaged[table].exists()
        assert (quarantined[0] / rel[table]).read_bytes() == data  # moved, never deleted
    out = " ".join(repair.stdout.split())
    assert ("2 track(s) of library 'a' lack toy features (config c0); re-create them as they "
            "were made") in out
    assert ", ".join(damaged["ids"][2:]) in out
    assert f"`mfs scan --name b --store {store.root}`" in out
    assert "that run's record is gone" in out and "leaderboard entries are gone" in out

    after = mfs(store, "sql", "select count(*) AS n from tracks", "--format", "json")
    assert after.returncode == 0 and after.stderr == ""
    assert json.loads(after.stdout) == [{"n": 4}]
    assert mfs(store, "doctor").returncode == 0
    assert mfs(store, "scan", "--name", "b").returncode == 0


def test_damaged_pages_behind_a_good_footer(store: Store, tmp_path: Path) -> None:
    write_audio(tmp_path / "a" / "t.wav")
    scan(store, "a", "folder", tmp_path / "a")
    with store.writing("test") as writer:
        part = writer.append_features("toy", "c0", feature_rows(["a:1", "a:2"]))
    data = bytearray(part.read_bytes())
    data[4:20] = bytes(b ^ 0xA5 for b in data[4:20])  # the first page header
    part.write_bytes(bytes(data))

    query = mfs(store, "sql", "select * from toy")
    assert query.returncode == 1
    assert "`mfs doctor --deep` to find it and `mfs repair --deep`" in one_line(query.stderr)
    assert mfs(store, "doctor").returncode == 0  # the footer is fine
    deep = mfs(store, "doctor", "--deep", "--format", "json")
    assert deep.returncode == 1
    assert json.loads(deep.stdout)[0]["held"].startswith("toy features, config c0: 2 rows")
    assert mfs(store, "repair", "--deep").returncode == 0
    assert mfs(store, "doctor", "--deep").returncode == 0


def test_duckdb_errors_naming_a_store_file_become_one_line() -> None:
    message = ('Invalid Input Error: Failed to read file "/s/features/toy/c0/part-1.parquet": '
               "ZSTD Decompression failure\n\nLINE 1: select ...")
    assert explain_error(message) == (
        "store file /s/features/toy/c0/part-1.parquet is damaged (ZSTD Decompression "
        "failure): run `mfs repair --deep --store /s` to move it aside into the store's "
        "quarantine folder (nothing is deleted)")
    assert explain_error("Binder Error: column x not found") is None
    assert explain_error("IO Error: No files found that match the pattern 'x.parquet'") is None


def test_extract_of_another_extractor_runs(store: Store, damaged: dict) -> None:
    result = mfs(store, "extract", "a", "--extractor", "energy",
                 env={"PYTHONPATH": str(Path(__file__).parent),
                      "MFS_EXTRACTORS": "energy=energy_extractor:EnergyExtractor"})
    assert result.returncode == 0, result.stderr
    assert "energy: 4 extracted, 0 failed" in result.stdout

"""`mfs sql` only reads: writing statements are refused in one line and the store is intact."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import feature_rows, invoke, run_mfs, scan, write_audio

from mfs.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store with a two-track library and one feature part (extractor `toy`)."""
    root = tmp_path_factory.mktemp("sql")
    store = Store(root / "store")
    write_audio(root / "music" / "one.wav", freq=800)
    write_audio(root / "music" / "two.wav", freq=810)
    scan(store, "mine", "folder", root / "music")
    track_ids = sorted(store.read_tracks("mine").column("track_id").to_pylist())
    with store.writing("test") as writer:
        writer.append_features("toy", "c0", feature_rows(track_ids))
    return store


def _files(store: Store) -> dict[str, int]:
    return {str(p.relative_to(store.root)): p.stat().st_size
            for p in store.root.rglob("*") if p.is_file() and ".lock" not in p.name}


def _one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]


def test_copy_over_a_library_or_the_features_is_refused_as_a_user_types_it(
        store: Store, tmp_path: Path) -> None:
    before = _files(store)
    attacks = [
        f"copy (select * from tracks limit 0) to '{store.tracks_dir}/mine.parquet'",
        f"copy (select 1 AS x) to '{store.features_dir}' "
        "(format parquet, partition_by (x), overwrite true)",
    ]
    for attack in attacks:
        result = run_mfs("sql", attack, "--store", str(store.root))
        _one_line_error(result.returncode, result.stdout, result.stderr,
                        "COPY statements are refused", "mfs export")
    assert _files(store) == before
    assert len(store.read_tracks("mine")) == 2


@pytest.mark.parametrize("query", [
    "COPY (SELECT 1) TO '{tmp}/x.csv'",
    "EXPORT DATABASE '{tmp}/db'",
    "ATTACH '{tmp}/x.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO tracks SELECT * FROM tracks",
    "SET enable_external_access = true",
    "CALL checkpoint()",
    "DROP VIEW tracks",
    "SELECT 1; COPY (SELECT 1) TO '{tmp}/y.csv'",
    "/* a comment */ EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/z.csv'",
])
def test_everything_but_reading_is_refused_in_one_line(store: Store, tmp_path: Path,
                                                       query: str) -> None:
    before = _files(store)
    code, out, err = invoke("sql", query.format(tmp=tmp_path), "--store", str(store.root))
    _one_line_error(code, out, err, "refused", "only reads the store")
    assert _files(store) == before and list(tmp_path.iterdir()) == []


def test_files_outside_the_store_cannot_be_read(store: Store, tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("a\n1\n")
    code, out, err = invoke("sql", f"SELECT * FROM read_csv('{tmp_path}/other.csv')",
                            "--store", str(store.root))
    _one_line_error(code, out, err, "SQL failed", "reads only the store's files")


@pytest.mark.parametrize(("query", "expected"), [
    ("SELECT count(*) AS n FROM tracks", [{"n": 2}]),
    ("WITH t AS (SELECT track_id FROM toy) SELECT count(*) AS n FROM t", [{"n": 2}]),
    ("FROM features SELECT count(*) AS n", [{"n": 2}]),
    ("SELECT count(*) AS n FROM (DESCRIBE tracks) WHERE column_name = 'genre'", [{"n": 1}]),
    ("SELECT column_name FROM (SUMMARIZE toy) WHERE column_name = 'run_id'",
     [{"column_name": "run_id"}]),
    ("SELECT 1 AS n;", [{"n": 1}]),
])
def test_reading_statements_still_work(store: Store, query: str, expected: list) -> None:
    code, out, err = invoke("sql", query, "--format", "json", "--store", str(store.root))
    assert code == 0, err
    assert json.loads(out) == expected


def test_describe_summarize_and_explain_print(store: Store) -> None:
    for query in ("DESCRIBE tracks", "SUMMARIZE tracks", "SHOW TABLES",
                  "EXPLAIN SELECT * FROM tracks", "EXPLAIN ANALYZE SELECT * FROM tracks"):
        code, out, err = invoke("sql", query, "-f", "csv", "--store", str(store.root))
        assert code == 0, (query, err)
        assert len(list(csv.reader(io.StringIO(out)))) > 1, query


@pytest.mark.parametrize("query", ["", "   ", "/* only a comment */", ";"])
def test_an_empty_query_is_one_line(store: Store, query: str) -> None:
    result = run_mfs("sql", query, "--store", str(store.root))
    _one_line_error(result.returncode, result.stdout, result.stderr, "SQL query is empty")

"""The CLI surface as a user types it: one --format everywhere, help with real types and an
example, user data printed literally, and benchmarks refused when they cannot mean anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke, run_mfs, write_audio
from synthetic_store import write_synthetic_library

from mfs.store import Store

COMMANDS = ("scan", "status", "sql", "extractors", "extract", "backfill", "demo", "stats",
            "export", "import-features", "bench", "leaderboard", "compare", "report",
            "serve")
PRINTING = {  # commands that print data, with the arguments they need
    "status": [], "sql": ["SELECT 1 AS n, 2 AS m"], "extractors": [], "stats": ["synth-a"],
    "leaderboard": [],
}


def _one_line_error(code: int, out: str, err: str, *words: str) -> str:
    assert code != 0 and out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Libraries `four` (four genres) and `one` (one genre), one 16-dim extractor."""
    store = Store(tmp_path_factory.mktemp("surface") / "store")
    write_synthetic_library(store, "four", 80, with_split=False)
    write_synthetic_library(store, "one", 20, genres=("rock",), with_split=False)
    return store


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_real_types_and_an_example(command: str) -> None:
    code, out, _ = invoke(command, "--help", env={"COLUMNS": "120"})
    assert code == 0
    assert "<bool>" not in out  # flags take no value
    example = [line.strip() for line in out.splitlines() if "Example:" in line]
    assert example and example[0].startswith(f"Example: mfs {command}"), out


def test_help_prints_brackets_literally_and_no_bool_beside_flags() -> None:
    code, out, _ = invoke("--help", env={"COLUMNS": "120"})
    assert code == 0 and "<bool>" not in out and "demo " in out
    code, out, _ = invoke("stats", "--help", env={"COLUMNS": "120"})
    assert code == 0 and "extractor[@config_hash][:column]" in out


@pytest.mark.parametrize("command", sorted(PRINTING))
def test_every_printing_command_takes_one_validated_format(synth: Store, command: str) -> None:
    args = [command, *PRINTING[command]] + (["--store", str(synth.root)]
                                            if command != "extractors" else [])
    code, out, err = invoke(*args, "--format", "json")
    assert code == 0, err
    json.loads(out)
    code, out, err = invoke(*args, "-f", "csv")
    assert code == 0 and "," in out.splitlines()[0 if command != "status" else 1], err
    _one_line_error(*invoke(*args, "--format", "yaml"), "--format 'yaml'", "table, csv, json")
    for old in ("--json", "--csv"):
        code, _, _ = invoke(*args, old)
        assert code != 0, f"{command} {old} is gone: one way to do each thing"


def test_file_names_with_brackets_print_literally(tmp_path: Path) -> None:
    music, store = tmp_path / "music", str(tmp_path / "store")
    write_audio(music / "Song [remix].wav", freq=800)
    write_audio(music / "odd [" / "bold] name.wav", freq=810)
    write_audio(music / "copy [/b].wav", freq=800)  # the same audio: a DuplicateAudio failure
    result = run_mfs("scan", str(music), "--kind", "folder", "--name", "mine", "--store", store)
    assert result.returncode == 0, result.stderr
    result = run_mfs("sql", "SELECT path FROM tracks ORDER BY path", "--store", store)
    assert result.returncode == 0, result.stderr
    assert "Song [remix].wav" in result.stdout and "odd [/bold] name.wav" in result.stdout
    result = run_mfs("status", "--store", store)
    assert result.returncode == 0, result.stderr
    assert "copy [/b].wav" in result.stdout and "Song [remix].wav" in result.stdout
    code, out, err = invoke("sql", "SELECT '[red]x[/red]' AS \"[bold]\"", "--store", store)
    assert code == 0 and "[red]x[/red]" in out and "[bold]" in out, err


def test_bench_refuses_a_library_of_one_genre_and_writes_nothing(synth: Store) -> None:
    before = sorted(synth.root.rglob("*"))
    result = run_mfs("bench", "one", "--features", "synth-a", "--folds", "2",
                     "--store", str(synth.root))
    line = _one_line_error(result.returncode, result.stdout, result.stderr,
                           "'one'", "'rock'", "at least two")
    assert "np." not in line
    assert sorted(synth.root.rglob("*")) == before


def test_fold_errors_name_the_genre(synth: Store) -> None:
    line = _one_line_error(*invoke("bench", "four", "--features", "synth-a", "--folds", "30",
                                   "--store", str(synth.root)),
                           "genre 'alpha' has only 20 tracks", "30 folds")
    assert "np." not in line


def test_a_pipe_in_features_points_at_the_vote_ensemble(synth: Store) -> None:
    _one_line_error(*invoke("bench", "four", "--features", "synth-a|synth-a",
                            "--store", str(synth.root)),
                    "'synth-a|synth-a'", "--features 'synth-a+synth-a' --ensemble vote")

"""The analysis commands end to end through the CLI, on a fresh Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from synthetic_store import make_library, tracks_table
from typer.testing import CliRunner

from mfs.analysis_commands import register
from mfs.store import Store

runner = CliRunner()


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture()
def workdir(tmp_path):
    """A store with a library of 120 tracks, and beside it a CSV of features keyed by
    file name."""
    store = Store(tmp_path / "store")
    lib = make_library("lib", 120, ("rock", "jazz", "pop"))
    with store.writing("test") as writer:
        writer.replace_tracks("lib", tracks_table("lib", lib.track_ids, list(lib.genres),
                                                  list(lib.splits), list(lib.artists)))
    rng = np.random.default_rng(0)
    shift = {"rock": 0.0, "jazz": 1.5, "pop": 3.0}
    lines = ["filename,tempo,loudness,constant,label"]
    for track_id, genre in zip(lib.track_ids, lib.genres, strict=True):
        tempo, loud = rng.standard_normal(2) + shift[genre]
        lines.append(f"{track_id.split(':')[1]}.wav,{tempo},{loud},1,{genre}")
    (tmp_path / "f.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def run(app, *args: str):
    return runner.invoke(app, [*args], catch_exceptions=False)


def test_import_stats_bench_leaderboard_export_report(app, workdir):
    s = str(workdir / "store")
    result = run(app, "import-features", str(workdir / "f.csv"), "--name", "table", "--library",
                 "lib", "--store", s)
    assert result.exit_code == 0, result.output
    assert "imported 120 tracks into table@" in result.output and "label" in result.output
    assert ": features (" in result.output  # the column summary is text, not rich markup

    result = run(app, "stats", "table", "--library", "lib", "--store", s)
    assert result.exit_code == 0 and "dead dimensions" in result.output
    assert "table.features.constant" in result.output
    result = run(app, "stats", "table", "--by", "genre", "--dims", "-f", "json", "--store", s)
    rows = json.loads(result.output)
    assert len(rows) == 9 and {r["group"] for r in rows} == {"rock", "jazz", "pop"}

    result = run(app, "bench", "lib", "--features", "table", "--model", "logreg,xgboost",
                 "--seed", "1", "--store", s)
    assert result.exit_code == 0, result.output
    assert "kept 120 of 120" in result.output and "saved to the leaderboard" in result.output

    result = run(app, "leaderboard", "-f", "json", "--store", s)
    board = json.loads(result.output)
    assert {r["model"] for r in board} == {"logreg", "xgboost"}
    assert all(r["command"].startswith("mfs bench lib --features table") for r in board)

    out = workdir / "t.parquet"
    result = run(app, "export", "lib", "--features", "table", "--split", "kfold", "--out",
                 str(out), "--store", s)
    assert result.exit_code == 0 and out.exists() and "split: kfold" in result.output

    result = run(app, "report", "lib", "--out", str(workdir / "report"), "--store", s)
    assert result.exit_code == 0 and (workdir / "report" / "index.html").exists()


def test_user_errors_are_one_line_with_exit_code_1(app, workdir):
    s = str(workdir / "store")
    for args, message in (
        (["stats", "missing", "--store", s], "no stored features for extractor 'missing'"),
        (["bench", "nolib", "--features", "x", "--store", s], "unknown library 'nolib'"),
        (["bench", "lib", "--features", "x", "--model", "forest", "--store", s],
         "unknown model forest"),
        (["export", "lib", "--features", "x", "--out", "t.xlsx", "--store", s],
         "t.xlsx: export format must be one of"),
        (["import-features", str(workdir / "nofile.csv"), "--name", "n", "--library", "lib",
          "--store", s], "/nofile.csv: no such file"),
    ):
        result = run(app, *args)
        assert result.exit_code == 1, args
        line = " ".join(result.output.split())
        assert line.startswith("error: ") and message in line, result.output

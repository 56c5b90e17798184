"""Benchmark populations on a synthetic FMA-style library: the two-row-header tracks.csv
and a genres.csv tree, scanned as FMA (no audio), with subsets, imbalanced genres and an
"International" genre. The expected populations are computed here from the rows written."""

from __future__ import annotations

import json
import shlex
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from conftest import scan
from typer.testing import CliRunner

from mfs.analysis.benchmark import bench_configs, run_benchmarks
from mfs.analysis.export import export
from mfs.analysis.leaderboard import read_leaderboard
from mfs.analysis.models import model_params, sample_weights
from mfs.analysis.population import Population, check_where
from mfs.analysis.report import write_report
from mfs.analysis.training_table import load_training_table
from mfs.analysis_commands import register
from mfs.store import Store
from mfs.store.feature_rows import feature_table

# genre_id, parent, title: a two-level tree like FMA's genres.csv.
GENRES = [(12, 0, "Rock"), (21, 0, "Hip-Hop"), (15, 0, "Electronic"), (17, 0, "Folk"),
          (2, 0, "International"), (10, 0, "Pop"), (25, 12, "Punk"), (66, 12, "Indie-Rock"),
          (181, 15, "Techno")]
TITLE = {g: t for g, _, t in GENRES}
# (subset, genre_top id, how many): imbalanced, with International in small and medium.
PLAN = [("small", 12, 40), ("small", 21, 40), ("small", 2, 12),
        ("medium", 12, 30), ("medium", 21, 20), ("medium", 15, 30), ("medium", 17, 8),
        ("medium", 2, 10), ("large", 10, 25), ("large", 15, 15), ("large", None, 10)]
SPLITS = ["training"] * 8 + ["validation", "test"]


def plan_rows() -> list[dict]:
    rows, track_id = [], 1
    for subset, genre, count in PLAN:
        for i in range(count):
            if genre == 12:  # Rock: a Punk or Indie-Rock subgenre, every 7th both
                genres_all = [12, 25] if i % 2 else [12, 66]
                genres_all += [66] if i % 7 == 3 else []
            elif genre == 15 and i % 3 == 0:
                genres_all = [15, 181]
            elif genre is None:
                genres_all = [12, 21]  # two roots: FMA leaves genre_top empty
            else:
                genres_all = [genre]
            rows.append({"id": track_id, "subset": subset, "genre": TITLE.get(genre),
                         "genres_all": sorted(set(genres_all)), "split": SPLITS[i % 10],
                         "artist_id": str(track_id % 5), "title": f"Song {track_id}"})
            track_id += 1
    return rows


ROWS = plan_rows()
NORMAL_SPLIT = {"training": "train", "validation": "validation", "test": "test"}


def write_metadata(folder: Path) -> None:
    folder.mkdir(parents=True)
    pd.DataFrame([{"genre_id": g, "#tracks": 0, "parent": p, "title": t,
                   "top_level": g if p == 0 else p} for g, p, t in GENRES]
                 ).to_csv(folder / "genres.csv", index=False)
    columns = pd.MultiIndex.from_tuples([
        ("artist", "id"), ("artist", "name"), ("set", "split"), ("set", "subset"),
        ("track", "genre_top"), ("track", "genres_all"), ("track", "title")])
    data = [[r["artist_id"], f"Artist {r['artist_id']}", r["split"], r["subset"], r["genre"],
             str(r["genres_all"]), r["title"]] for r in ROWS]
    frame = pd.DataFrame(data, columns=columns,
                         index=pd.Index([r["id"] for r in ROWS], name="track_id"))
    frame.to_csv(folder / "tracks.csv")


@pytest.fixture(scope="module")
def fma(tmp_path_factory) -> Store:
    """The library scanned as FMA (every track listed without audio), with one 4-dim
    feature that separates genres a little."""
    root = tmp_path_factory.mktemp("fma")
    write_metadata(root / "fma_metadata")
    (root / "fma_large").mkdir()
    store = Store(root / "store")
    scan(store, "fma", "fma", root / "fma_large")
    rng = np.random.default_rng(0)
    centroids = {title: rng.standard_normal(4) * 1.5 for title in [*TITLE.values(), None]}
    ids = [f"fma:{r['id']}" for r in ROWS]
    matrix = np.stack([centroids[r["genre"]] + rng.standard_normal(4) for r in ROWS])
    batch = feature_table("signal", {"test": True}, ids,
                          {"embedding_mean": matrix.astype(np.float32)},
                          model_hash="none", run_id=uuid.uuid4().hex)
    with store.writing("test") as writer:
        writer.append_features("signal", batch.column("config_hash")[0].as_py(), batch)
    return store


def ids_of(rows: list[dict]) -> list[str]:
    return sorted(f"fma:{r['id']}" for r in rows)


def table(store: Store, **population):
    return load_training_table(store, "fma", ["signal"], population=Population(**population))


def test_the_library_is_fma_shaped(fma):
    text = (fma.root.parent / "fma_metadata" / "tracks.csv").read_text().splitlines()
    assert text[0].startswith(",artist,artist,set,set,track") and text[2].startswith("track_id")
    levels = dict(fma.connect().execute(
        "SELECT track_id, genre_levels FROM tracks WHERE track_id = 'fma:2'").fetchall())
    assert levels == {"fma:2": [1, 2]}  # Rock and its Punk/Indie-Rock child


def test_subset_is_cumulative_and_keeps_the_official_split(fma):
    labelled = [r for r in ROWS if r["genre"]]
    for subset, holds in (("small", {"small"}), ("medium", {"small", "medium"}),
                          ("large", {"small", "medium", "large"})):
        got = table(fma, subset=subset)
        expected = [r for r in labelled if r["subset"] in holds]
        assert got.track_ids.tolist() == ids_of(expected), subset
        split_of = {f"fma:{r['id']}": NORMAL_SPLIT[r["split"]] for r in expected}
        assert got.split.tolist() == [split_of[t] for t in got.track_ids]


def test_exclude_then_min_per_genre_counted_last_over_all_splits(fma):
    got = table(fma, subset="medium", exclude_genres=("International",), min_per_genre=30)
    # Folk (8) goes; Electronic has 30 tracks, 24 of them training: counted over all splits.
    expected = [r for r in ROWS if r["subset"] in ("small", "medium")
                and r["genre"] in ("Rock", "Hip-Hop", "Electronic")]
    assert got.track_ids.tolist() == ids_of(expected)
    population = got.population
    assert {g: c["tracks"] for g, c in population["tracks_per_genre"].items()} == {
        "Rock": 70, "Hip-Hop": 60, "Electronic": 30}
    assert population["tracks_per_genre"]["Electronic"] == {
        "tracks": 30, "train": 24, "validation": 3, "test": 3}
    assert population["genres_dropped"] == {
        "Pop": "--subset medium (set.subset in small, medium) (25 tracks)",
        "International": "--exclude-genres International (22 tracks)",
        "Folk": "--min-per-genre 30 (8 tracks)"}
    assert [(s["step"], s["dropped"], s["left"]) for s in population["steps"]] == [
        ("--subset medium (set.subset in small, medium)", 50, 190),
        ("--exclude-genres International", 22, 168), ("no label", 0, 168),
        ("missing signal", 0, 168), ("--min-per-genre 30", 8, 160)]
    assert got.dropped["filtered"] == 80 and got.dropped["kept"] == 160


def test_genres_where_and_level_labels(fma):
    got = table(fma, genres=("Rock", "Pop"), where="artist_id <> '3' AND title LIKE 'Song %'")
    expected = [r for r in ROWS if r["genre"] in ("Rock", "Pop") and r["artist_id"] != "3"]
    assert got.track_ids.tolist() == ids_of(expected)

    got = table(fma, where="list_contains(genres, 'Techno')")
    assert got.track_ids.tolist() == ids_of([r for r in ROWS if 181 in r["genres_all"]])

    # level2: a track's one subgenre; tracks with none or two at that level are dropped.
    got = table(fma, label="level2")
    expected = {f"fma:{r['id']}": TITLE[sub[0]] for r in ROWS
                if len(sub := [g for g in r["genres_all"] if g in (25, 66, 181)]) == 1}
    assert dict(zip(got.track_ids, got.genre, strict=True)) == expected
    steps = {s["step"]: s["dropped"] for s in got.population["steps"]}
    several = sum(1 for r in ROWS if {25, 66} <= set(r["genres_all"]))
    assert steps["several genres at level2"] == several > 0
    assert steps["no genre at level2"] == len(ROWS) - several - len(expected)


@pytest.mark.parametrize("condition", [
    "1=1; DROP TABLE tracks",
    "track_id IN (SELECT track_id FROM read_parquet('/etc/passwd'))",
    "1=1 UNION SELECT * FROM read_csv('/etc/passwd')",
    "1=1 ORDER BY track_id",
    "1=1 LIMIT 3",
    "EXISTS (SELECT 1)",
    "",
])
def test_where_refuses_anything_but_one_condition(fma, condition):
    with pytest.raises(ValueError, match="^--where") as error:
        Population(where=condition)
    assert "\n" not in str(error.value)


def test_where_reads_only_the_tracks(fma):
    with pytest.raises(ValueError, match="^--where .* failed: ") as error:
        table(fma, where="read_text('/etc/passwd') IS NOT NULL")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="no_such_column"):
        table(fma, where="no_such_column = 1")
    check_where("subset = 'small' AND duration_s IS NULL")  # a plain condition passes


def test_filters_leaving_one_genre_or_naming_none_are_one_line(fma):
    with pytest.raises(ValueError, match=r"^library 'fma' with --genres Rock --where "
                       r"'artist_id = '\"'\"'1'\"'\"'' leaves 1 genre: 'Rock' \(14 tracks\); "
                       "a benchmark needs at least two$"):
        run_benchmarks(fma, bench_configs("fma", ["signal"], ["logreg"], population=Population(
            genres=("Rock",), where="artist_id = '1'")), save=False)
    with pytest.raises(ValueError, match="--exclude-genres: no track is labelled 'Internatonal'"):
        table(fma, exclude_genres=("Internatonal",))
    with pytest.raises(ValueError, match="--subset 'tiny' is not one of"):
        Population(subset="tiny")


def test_balanced_class_weight_for_every_trained_model():
    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(sample_weights("balanced", "xgboost", y), [2 / 3] * 3 + [2])
    assert sample_weights("balanced", "logreg", y) is None  # logreg has class_weight itself
    assert model_params("logreg", 0, "balanced")["class_weight"] == "balanced"
    assert model_params("svm", 0, "balanced")["class_weight"] == "balanced"
    assert model_params("xgboost", 0, "balanced")["class_weight"] == "balanced (as sample weights)"
    assert model_params("mlp", 0, "balanced")["class_weight"] == "balanced (as sample weights)"
    with pytest.raises(ValueError, match="--class-weight 'even'"):
        bench_configs("fma", ["signal"], ["logreg"], class_weight="even")


def test_export_applies_the_same_population(fma, tmp_path):
    population = Population(subset="small", exclude_genres=("International",))
    summary = export(fma, "fma", ["signal"], "official", tmp_path / "t.parquet",
                     population=population)
    frame = pd.read_parquet(tmp_path / "t.parquet")
    expected = [r for r in ROWS if r["subset"] == "small" and r["genre"] != "International"]
    assert sorted(frame["track_id"]) == ids_of(expected) and summary.rows == 80
    assert frame.loc[frame["track_id"] == "fma:2", "genres"].iloc[0].tolist() == [
        "Rock", "Punk"]
    metadata = json.loads(pq.read_schema(tmp_path / "t.parquet").metadata[b"mfs.export"])
    assert metadata["population"]["filters"] == {"subset": "small",
                                                 "exclude_genres": ["International"]}


def test_stored_command_reproduces_the_numbers_through_the_cli(fma, tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    store = str(fma.root)
    where = "title NOT LIKE '%9' AND artist_id <> '4'"
    result = runner.invoke(app, [
        "bench", "fma", "--features", "signal", "--model", "logreg,xgboost",
        "--subset", "medium", "--exclude-genres", "International", "--where", where,
        "--min-per-genre", "20", "--class-weight", "balanced", "--store", store],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "population (genre_top): 3 genres" in result.output
    assert "International (--exclude-genres International" in result.output
    first = read_leaderboard(fma)
    assert len(first) == 2
    for row in first.itertuples():
        config = json.loads(row.config)
        assert config["population"]["where"] == where and config["class_weight"] == "balanced"
        assert json.loads(row.population)["filters"]["min_per_genre"] == 20
        args = shlex.split(row.command)
        assert args[:2] == ["mfs", "bench"] and where in args
        again = runner.invoke(app, [*args[1:], "--store", store], catch_exceptions=False)
        assert again.exit_code == 0, again.output
    board = read_leaderboard(fma)
    assert len(board) == 4
    for command, rows in board.groupby("command"):
        assert len(rows) == 2, command
        for column in ("accuracy", "balanced_accuracy", "macro_f1", "n_tracks", "n_train",
                       "n_test", "population"):
            assert rows[column].nunique() == 1, (command, column)
        assert len({tuple(labels) for labels in rows["labels"]}) == 1

    page = write_report(fma, "fma", tmp_path / "report").read_text()
    for text in ("Population", "genre kept", "Genres dropped, and why", "International",
                 "--min-per-genre 20", "Folk"):
        assert text in page, text


def test_a_tracks_file_from_before_genre_levels_still_reads(fma, tmp_path):
    """A store scanned before `genre_levels` existed: tracks read with the column null, and
    a level label asks for a rescan in one line."""
    old_store = Store(tmp_path / "old")
    for folder in ("libraries", "features"):
        shutil.copytree(fma.root / folder, old_store.root / folder)
    with old_store.writing("test") as writer:
        writer.replace_tracks("fma", fma.read_tracks("fma"))
    path = old_store.tracks_dir / "fma.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["genre_levels"]), path)
    assert old_store.read_tracks("fma").column("genre_levels").null_count == len(ROWS)
    with pytest.raises(ValueError, match=r"^--label level2: library 'fma' was scanned before"):
        load_training_table(old_store, "fma", ["signal"], population=Population(label="level2"))
    assert len(load_training_table(old_store, "fma", ["signal"]).track_ids) == len(ROWS) - 10

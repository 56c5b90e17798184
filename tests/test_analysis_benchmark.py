"""Benchmarks on synthetic stores with known answers: leakage, determinism, ensembles,
preprocessing fitted on training rows only, the stored leaderboard, zero-shot scoring."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmark_helpers import run_benchmark
from synthetic_store import make_library, tracks_table, write_synthetic_library

from mfs.analysis.benchmark import bench_configs, run_benchmarks
from mfs.analysis.leaderboard import read_leaderboard
from mfs.analysis.models import build_pipeline
from mfs.analysis.prompts import DEFAULT_TEMPLATE, prompt_text
from mfs.analysis.results import BenchmarkConfig
from mfs.analysis.training_table import load_training_table
from mfs.analysis.zero_shot import cosine_scores
from mfs.store import Store
from mfs.store.feature_rows import feature_table
from mfs.store.schema import LEADERBOARD, PROMPTS

GENRES = ("alpha", "beta", "gamma", "delta")


def write(store: Store, extractor: str, ids: list[str], matrix: np.ndarray,
          column: str = "embedding_mean") -> None:
    batch = feature_table(extractor, {"test": True}, ids, {column: matrix},
                          model_hash="none", run_id=uuid.uuid4().hex)
    with store.writing("test") as writer:
        writer.append_features(extractor, batch.column("config_hash")[0].as_py(), batch)


def id_code(track_id: str) -> float:
    """A number unique to the track and unrelated to its genre."""
    return int(hashlib.sha256(track_id.encode()).hexdigest()[:8], 16) / 2 ** 32


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Store, object]:
    """240 tracks, 4 genres, 6 artists per genre; `signal` separates genres a little,
    `copy` is `signal` twice (exact duplicates), `idcode` encodes the track id."""
    store = Store(tmp_path_factory.mktemp("bench") / "store")
    lib = write_synthetic_library(store, "synth", 400, GENRES, {"signal": 6}, separation=0.8,
                                  artists_per_genre=6, seed=1)
    signal = store.connect().execute(
        "SELECT embedding_mean FROM signal ORDER BY track_id").fetchall()
    ids = sorted(lib.track_ids)
    matrix = np.array([row[0] for row in signal], dtype=np.float32)
    write(store, "copy", ids, np.hstack([matrix, 2 * matrix + 1]))
    write(store, "idcode", ids, np.array([[id_code(t)] for t in ids]))
    return store, lib


def test_official_split_scores_with_bootstrap_interval(synth):
    store, _ = synth
    result = run_benchmark(store, "synth", "signal", model="logreg", save=False)
    assert result.split == "official" and (result.n_train, result.n_test) == (240, 80)
    low, high = result.intervals["accuracy"]
    assert 0.4 < low < result.scores["accuracy"] < high
    assert "bootstrap" in result.ci_method
    assert result.confusion.sum() == 80 and result.confusion.shape == (4, 4)
    assert sum(v["support"] for v in result.per_genre.values()) == 80
    assert set(result.per_genre) == set(GENRES)


def test_track_id_feature_does_not_help_on_a_proper_split(synth):
    store, _ = synth
    table = load_training_table(store, "synth", ["idcode"])
    train = table.split == "train"
    memoriser = build_pipeline("xgboost", seed=0).set_params(model__n_jobs=1)
    memoriser.fit(table.X[train], table.genre[train] > "b")
    assert memoriser.score(table.X[train], table.genre[train] > "b") > 0.9  # it can memorise
    alone = run_benchmark(store, "synth", "idcode", model="xgboost", save=False)
    assert alone.scores["accuracy"] < 0.4 and alone.intervals["accuracy"][0] < 0.25  # chance
    signal = run_benchmark(store, "synth", "signal", model="logreg", save=False)
    both = run_benchmark(store, "synth", "signal+idcode", model="logreg", save=False)
    assert abs(both.scores["accuracy"] - signal.scores["accuracy"]) <= 0.05


def test_artist_split_removes_artist_leakage(tmp_path):
    """Genre is only learnable through artist signatures: random folds let artists leak
    from training into test; artist folds do not."""
    store = Store(tmp_path / "store")
    lib = make_library("art", 240, GENRES, artists_per_genre=6)
    rng = np.random.default_rng(0)
    artists = sorted(set(lib.artists))
    signature = dict(zip(artists, rng.standard_normal((len(artists), 8)), strict=True))
    matrix = np.array([signature[a] for a in lib.artists]) + 0.3 * rng.standard_normal((240, 8))
    with store.writing("test") as writer:
        writer.replace_tracks("art", tracks_table("art", lib.track_ids, list(lib.genres),
                                                  artists=list(lib.artists)))
    write(store, "sig", lib.track_ids, matrix)
    leaky = run_benchmark(store, "art", "sig", model="svm", split="kfold", save=False)
    proper = run_benchmark(store, "art", "sig", model="svm", split="artist", save=False)
    assert leaky.split == "kfold" and leaky.scores["accuracy"] > 0.9
    assert proper.split == "artist" and proper.scores["accuracy"] < 0.45
    assert proper.ci_method == "t-interval over 5 folds"


@pytest.mark.parametrize("model", ["xgboost", "mlp", "svm"])
def test_same_seed_same_numbers(synth, model):
    store, _ = synth
    runs = [run_benchmark(store, "synth", "signal+copy", model=model, split="kfold", seed=3,
                          prune=0.95, pca=4, save=False) for _ in range(2)]
    assert runs[0].scores == runs[1].scores and runs[0].intervals == runs[1].intervals
    np.testing.assert_array_equal(runs[0].confusion, runs[1].confusion)
    assert runs[0].fold_scores == runs[1].fold_scores


def test_pruning_removes_the_duplicated_half(synth):
    store, _ = synth
    result = run_benchmark(store, "synth", "copy", model="xgboost", prune=0.95, save=False)
    assert (result.n_features_in, result.n_features_used) == (12, 6)
    assert all(name.startswith("copy.embedding_mean[") for name in result.importance)
    kept = {int(name.split("[")[1].rstrip("]")) for name in result.importance}
    assert kept <= set(range(6))  # the first copy of each pair is the one kept
    assert result.importance_by_selection == pytest.approx({"copy": 1.0})


def test_preprocessing_is_fitted_on_training_rows_only(tmp_path):
    """Column 1 copies column 0 on training tracks only: pruning must drop it, which it
    would not if test rows (where the two are unrelated) took part in the fit."""
    store = Store(tmp_path / "store")
    lib = write_synthetic_library(store, "fit", 200, GENRES, {"sig": 4}, seed=2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(200)
    b = np.where(lib.splits == "train", a, rng.standard_normal(200))
    write(store, "pair", lib.track_ids, np.column_stack([a, b]))
    result = run_benchmark(store, "fit", "pair", model="logreg", prune=0.95, save=False)
    assert result.n_features_used == 1
    everywhere = np.corrcoef(a, b)[0, 1]
    assert everywhere < 0.95  # fitting on all rows would have kept both


def test_ensembles_and_singles_share_one_leaderboard(synth):
    store, _ = synth
    configs = bench_configs("synth", ["signal", "idcode", "signal+idcode"], ["logreg"],
                            ensemble="both", seed=0)
    assert [c.feature_set for c in configs] == ["signal", "idcode", "signal+idcode",
                                                "signal|idcode"]
    results = run_benchmarks(store, configs)
    assert {r.n_test for r in results} == {80}  # every entry scored on the same tracks
    board = read_leaderboard(store, "synth")
    assert set(board["feature_set"]) == {"signal", "idcode", "signal+idcode", "signal|idcode"}
    assert set(board["ensemble"]) == {"concat", "vote"}


def test_feature_sets_may_overlap_but_a_set_may_not_repeat_a_column(synth):
    store, _ = synth
    configs = bench_configs("synth", ["copy", "copy:embedding_*"], ["logreg"])
    first, second = run_benchmarks(store, configs, save=False)
    assert first.scores == second.scores  # the same column, selected two ways
    with pytest.raises(ValueError, match="selected twice"):
        run_benchmark(store, "synth", "copy+copy:embedding_mean", model="logreg", save=False)


def test_leaderboard_rows_reproduce_their_numbers(synth):
    store, _ = synth
    first = run_benchmark(store, "synth", "signal+copy", model="xgboost", prune=0.9, pca=0.9,
                          seed=7)
    parts = sorted(store.leaderboard_dir.glob("part-*.parquet"))
    assert parts and not list(store.leaderboard_dir.glob(".*"))
    assert pq.read_schema(parts[-1]).names == LEADERBOARD.names
    row = read_leaderboard(store, "synth").iloc[0]
    assert row["accuracy"] == first.scores["accuracy"] and row["seed"] == 7
    assert row["command"] == ("mfs bench synth --features signal+copy --model xgboost "
                              "--split official --seed 7 --prune 0.9 --pca 0.9")
    assert json.loads(row["selections"])[0]["config_hash"]
    assert "xgboost-cpu" in json.loads(row["versions"])
    assert json.loads(row["model_params"])["random_state"] == 7
    again = run_benchmarks(store, [BenchmarkConfig(**json.loads(row["config"])
                                                   | {"features": tuple(row["features"])})],
                           save=False)[0]
    assert again.scores == first.scores
    runs = store.connect().execute(
        "SELECT count(*) FROM runs WHERE kind = 'benchmark'").fetchall()[0][0]
    assert runs >= 1


def test_user_errors(synth):
    store, _ = synth
    with pytest.raises(ValueError, match="unknown model"):
        bench_configs("synth", ["signal"], ["forest"])
    with pytest.raises(ValueError, match="needs an artist"):
        _artistless(store)
    with pytest.raises(ValueError, match="unknown split"):
        run_benchmark(store, "synth", "signal", split="random", save=False)


def _artistless(store: Store) -> None:
    lib = make_library("noart", 40, GENRES)
    with store.writing("test") as writer:
        writer.replace_tracks("noart", tracks_table("noart", lib.track_ids, list(lib.genres)))
    write(store, "noart-feat", lib.track_ids, np.zeros((40, 2)))
    run_benchmark(store, "noart", "noart-feat", split="artist", save=False)


def write_prompts(store: Store, extractor: str, config_hash: str, genres: list[str],
                  vectors: np.ndarray, template: str = DEFAULT_TEMPLATE,
                  model_hash: str = "none") -> None:
    """Prompt rows as `mfs.analysis.prompts` stores them, for a model this test has not."""
    table = pa.Table.from_pylist([
        {"extractor": extractor, "config_hash": config_hash, "genre": genre,
         "template": template, "prompt": prompt_text(template, genre),
         "embedding": vector.tolist(), "model_hash": model_hash, "tokenizer_hash": "t",
         "versions": "{}", "created_at": datetime.now(UTC)}
        for genre, vector in zip(genres, vectors, strict=True)], schema=PROMPTS)
    with store.writing("test") as writer:
        writer.append_prompts(extractor, config_hash, table)


def test_zero_shot_from_the_prompt_table(tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    lib = make_library("zs", 80, GENRES)
    rng = np.random.default_rng(0)
    centroids = dict(zip(GENRES, rng.standard_normal((4, 16)), strict=True))
    audio = np.array([centroids[g] for g in lib.genres]) + 0.5 * rng.standard_normal((80, 16))
    with store.writing("test") as writer:
        writer.replace_tracks("zs", tracks_table("zs", lib.track_ids, list(lib.genres),
                                                 list(lib.splits)))
    write(store, "clap", lib.track_ids, audio, column="audio_mean")
    config_hash = store.connect().execute("SELECT any_value(config_hash) FROM clap").fetchone()[0]
    texts = np.array([centroids[g] + 0.1 * rng.standard_normal(16) for g in GENRES])
    write_prompts(store, "clap", config_hash, [*GENRES, "polka"],
                  np.vstack([texts, rng.standard_normal(16)]))
    # Rows of another model (same config) are never mixed in.
    write_prompts(store, "clap", config_hash, list(GENRES), -texts, model_hash="other")
    result = run_benchmark(store, "zs", "clap:audio_mean", model="zero-shot", save=False)
    assert result.split == "official" and result.n_test == 16 and result.n_train == 0
    assert result.scores["accuracy"] > 0.9
    assert result.labels == sorted(GENRES)  # the polka prompt has no tracks: not a class
    assert result.model_params["template"] == DEFAULT_TEMPLATE
    assert store.connect().execute("SELECT count(*) FROM prompts").fetchone()[0] == 9
    connects = []
    connect = Store.connect
    monkeypatch.setattr(Store, "connect", lambda self: connects.append(1) or connect(self))
    configs = [BenchmarkConfig("zs", ("clap:audio_mean",), model)
               for model in ("zero-shot", "zero-shot", "logreg")]
    run_benchmarks(store, configs, save=False)
    assert len(connects) == 1  # one command, one connection: the views are built once
    # A template whose prompts are not stored needs the model's text tower to embed them.
    with pytest.raises(ValueError, match="'clap' is no registered extractor"):
        run_benchmark(store, "zs", "clap:audio_mean", model="zero-shot",
                      prompts="Music of the {genre} kind.", save=False)
    with pytest.raises(ValueError, match="has no .genre. field"):
        run_benchmark(store, "zs", "clap:audio_mean", model="zero-shot", prompts="a song",
                      save=False)


def test_cosine_scores_ignore_scale():
    audio = np.array([[1.0, 0.0], [0.0, 3.0], [np.nan, 1.0]])
    text = np.array([[10.0, 0.0], [0.0, 0.1]])
    scores = cosine_scores(audio, text)
    assert scores.argmax(axis=1)[:2].tolist() == [0, 1]
    assert np.isneginf(scores[2]).all()

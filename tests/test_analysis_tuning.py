"""`mfs bench --tune` and `--model probe` on synthetic libraries (60 % train, 20 %
validation, 20 % test per genre): settings chosen on the validation part, never on the test
part, refit on train + validation, recorded in the leaderboard and reproduced by the
stored command; the probe early-stops on the validation part and is deterministic."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from conftest import invoke
from synthetic_store import write_synthetic_library

from mfs.analysis.benchmark import evaluate, run_benchmarks
from mfs.analysis.leaderboard import read_leaderboard
from mfs.analysis.results import BenchmarkConfig
from mfs.analysis.training_table import load_training_table
from mfs.analysis.tuning import INNER_FOLDS, SEARCH_SPACES, _inner_folds, candidates
from mfs.store import Store

GENRES = ("alpha", "beta", "gamma", "delta")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("tune") / "store")
    write_synthetic_library(store, "synth", 200, GENRES, {"sig": 8, "other": 4},
                            separation=0.6)
    return store


def test_settings_are_chosen_on_the_validation_part_without_the_test_part(synth):
    table = load_training_table(synth, "synth", ["sig"])
    config = BenchmarkConfig("synth", ("sig",), "logreg", split="official", tune=True)
    result = evaluate(table, config)
    tuning = result.model_params["tuning"]
    assert tuning["selected_on"] == "validation part (40 tracks)"
    assert tuning["fitted_on"] == "training + validation parts"
    assert tuning["space"] == SEARCH_SPACES["logreg"]
    assert tuning["chosen"][0] in candidates("logreg")
    assert result.model_params["C"] == tuning["chosen"][0]["C"]
    assert (result.n_train, result.n_test) == (160, 40)
    # The untuned entry fits on train alone, as before --tune existed.
    assert evaluate(table, BenchmarkConfig("synth", ("sig",), "logreg")).n_train == 120

    # Noise in place of the test part's features: the search sees exactly the same.
    test = table.split == "test"
    table.X[test] = np.random.default_rng(1).standard_normal(table.X[test].shape)
    assert evaluate(table, config).model_params["tuning"] == tuning


def test_without_a_validation_part_inner_folds_of_each_training_fold_choose(synth):
    table = load_training_table(synth, "synth", ["sig"])
    result = evaluate(table, BenchmarkConfig("synth", ("sig",), "svm", split="kfold",
                                             folds=3, tune=True))
    tuning = result.model_params["tuning"]
    assert tuning["selected_on"] == "5 artist-grouped inner folds of the training part"
    assert tuning["fitted_on"] == "training part"
    assert len(tuning["chosen"]) == len(result.fold_scores) == 3
    assert all(choice in candidates("svm") for choice in tuning["chosen"])


def test_inner_folds_never_split_an_artist_and_otherwise_keep_neighbours_together():
    """Inner folds mirror the leak-free outer split: an artist's tracks stay on one side;
    without artists, each inner test part is a contiguous run of track ids per genre."""
    rng = np.random.default_rng(0)
    train = np.arange(3, 203)  # rows 0-2 belong to the outer test part
    y = np.repeat(np.arange(4), 51)[:203]
    artists = np.array([f"artist{i // 4}" for i in range(203)], dtype=object)
    rng.shuffle(artists[3:])
    pairs, how = _inner_folds(train, y, artists, seed=0)
    assert how == f"{INNER_FOLDS} artist-grouped inner folds of the training part"
    for fit, score in pairs:
        assert not set(artists[fit]) & set(artists[score])
        assert sorted(np.concatenate([fit, score])) == list(train)

    artists[7] = None  # one track without an artist: contiguous runs instead
    pairs, how = _inner_folds(train, y, artists, seed=0)
    assert how == f"{INNER_FOLDS} contiguous (track-id order) inner folds of the training part"
    for _, score in pairs:
        for genre in range(4):
            rows = score[y[score] == genre]
            assert list(rows) == list(range(rows[0], rows[-1] + 1))


def test_tuned_probe_keeps_stopping_on_the_validation_part(synth):
    table = load_training_table(synth, "synth", ["sig"])
    result = evaluate(table, BenchmarkConfig("synth", ("sig",), "probe", tune=True))
    tuning = result.model_params["tuning"]
    assert tuning["selected_on"] == "validation part (40 tracks)"
    assert tuning["fitted_on"] == "training part, early stopping on the validation part"
    assert result.n_train == 120
    chosen = tuning["chosen"][0]
    assert (result.model_params["learning_rate"], result.model_params["dropout"]) == (
        chosen["learning_rate"], chosen["dropout"])
    assert result.scores["accuracy"] > 0.5  # chance is 0.25


def test_probe_is_deterministic_for_a_seed_and_votes_with_probabilities(synth):
    config = BenchmarkConfig("synth", ("sig", "other"), "probe", ensemble="vote", seed=3,
                             class_weight="balanced")
    first, second = run_benchmarks(synth, [config, config], save=False)
    assert first.scores == second.scores
    assert np.array_equal(first.confusion, second.confusion)
    params = first.model_params
    assert (params["hidden"], params["dropout"], params["learning_rate"]) == (512, 0.2, 0.001)
    assert params["early_stopping_on"] == "validation part"
    assert params["class_weight"] == "balanced (as sample weights)"


def test_cli_tune_is_stored_and_its_command_reproduces_the_row(tmp_path):
    root = tmp_path / "store"
    write_synthetic_library(Store(root), "synth", 120, GENRES, {"sig": 6}, separation=0.6)
    code, out, err = invoke("bench", "synth", "--features", "sig", "--model", "svm",
                            "--tune", "--store", str(root))
    assert code == 0, err
    assert "svm (tuned)" in out
    first = read_leaderboard(Store(root)).iloc[0]
    assert first.command == ("mfs bench synth --features sig --model svm --split official "
                             "--seed 0 --tune")
    assert json.loads(first.config)["tune"] is True
    code, _, err = invoke(*shlex.split(first.command)[1:], "--store", str(root))
    assert code == 0, err
    board = read_leaderboard(Store(root))
    assert list(board["command"]) == [first.command] * 2
    assert board["accuracy"].nunique() == 1
    assert board["model_params"].nunique() == 1
    assert json.loads(first.model_params)["tuning"]["chosen"][0] in candidates("svm")
    code, out, _ = invoke("leaderboard", "--store", str(root))
    assert code == 0 and "svm (tuned)" in out

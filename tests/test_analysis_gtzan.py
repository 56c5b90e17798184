"""Known answer on real data: the published MSD-musicnn taggrams of GTZAN, imported from
their .npz files, benchmarked on the fault-filtered split (443 train / 290 test).

Published: 77.24 % test accuracy, SVM on max-pooled taggrams (Pons & Favory). The FF test
set has 290 clips, so one clip is 0.34 pp and the 95 % interval is about ±4.7 pp wide.
"""

from __future__ import annotations

import pytest
from benchmark_helpers import run_benchmark
from conftest import shared
from synthetic_store import tracks_table

from mfs.analysis.importing import import_features
from mfs.analysis.training_table import load_training_table
from mfs.libraries.gtzan import read_split_lists
from mfs.store import Store

PUBLISHED_SVM_MAX = 0.7724


@pytest.fixture(scope="module")
def gtzan(tmp_path_factory) -> Store:
    """A GTZAN library of the 930 fault-filtered tracks with the taggrams imported."""
    taggrams = shared("gtzan-musicnn-taggrams")
    store = Store(tmp_path_factory.mktemp("gtzan") / "store")
    splits = read_split_lists(taggrams / "splits")
    stems = sorted(splits)
    with store.writing("test") as writer:
        writer.replace_tracks("gtzan", tracks_table(
            "gtzan", [f"gtzan:{s}" for s in stems], [s.split(".")[0] for s in stems],
            [splits[s] for s in stems]))
    summary = import_features(store, sorted(taggrams.glob("*.npz")), "musicnn-msd-taggram",
                              "gtzan")
    assert (summary.written, summary.unmatched) == (733, 0)
    assert summary.columns == {"features_mean": 50, "features_max": 50}
    return store


def test_validation_tracks_have_no_taggrams_and_are_reported(gtzan):
    table = load_training_table(gtzan, "gtzan", ["musicnn-msd-taggram"])
    assert table.dropped["library_tracks"] == 930
    assert table.dropped["missing musicnn-msd-taggram"] == 197  # the 197 validation tracks
    assert sorted(set(table.split)) == ["test", "train"]


def test_svm_on_max_pooled_taggrams_matches_the_published_number(gtzan):
    result = run_benchmark(gtzan, "gtzan", "musicnn-msd-taggram:features_max", model="svm",
                           save=False)
    assert (result.split, result.n_train, result.n_test) == ("official", 443, 290)
    low, high = result.intervals["accuracy"]
    assert low <= PUBLISHED_SVM_MAX <= high
    assert 0.72 <= result.scores["accuracy"] <= 0.82


def test_tuned_svm_reaches_the_published_number(gtzan):
    """--tune on the fault-filtered split: the validation tracks have no taggrams, so the
    settings come from inner folds of the 443 training tracks, contiguous runs of track
    numbers (GTZAN numbers an artist's files together); test scored once. Shuffled inner
    folds (87 % inner accuracy, artists on both sides) chose settings that scored 74.1 %."""
    result = run_benchmark(gtzan, "gtzan", "musicnn-msd-taggram:features_max", model="svm",
                           save=False, tune=True)
    tuning = result.model_params["tuning"]
    assert tuning["selected_on"] == ("5 contiguous (track-id order) inner folds of the "
                                     "training part")
    assert tuning["fitted_on"] == "training part"
    assert (result.n_train, result.n_test) == (443, 290)
    chosen = tuning["chosen"][0]
    assert (result.model_params["C"], result.model_params["gamma"]) == (chosen["C"],
                                                                        chosen["gamma"])
    low, high = result.intervals["accuracy"]
    assert low <= PUBLISHED_SVM_MAX <= high
    assert 0.76 <= result.scores["accuracy"] <= 0.82  # 77.2 % [72.4, 81.4] here


def test_marble_probe_on_max_pooled_taggrams(gtzan):
    """The torch probe (512 hidden, dropout 0.2, early-stopped on a tenth of train here)
    lands in the published range of the same features."""
    result = run_benchmark(gtzan, "gtzan", "musicnn-msd-taggram:features_max", model="probe",
                           save=False)
    assert result.model_params["early_stopping_on"] == "a stratified tenth of the training rows"
    low, high = result.intervals["accuracy"]
    assert low <= PUBLISHED_SVM_MAX <= high


@pytest.mark.parametrize("model", ["logreg", "svm", "xgboost"])
def test_plain_classifiers_on_mean_and_max_pooling(gtzan, model):
    result = run_benchmark(gtzan, "gtzan", "musicnn-msd-taggram", model=model, save=False)
    assert result.n_features_in == 100
    assert 0.70 <= result.scores["accuracy"] <= 0.84
    assert result.per_genre["classical"]["recall"] > 0.9  # the easiest GTZAN genre

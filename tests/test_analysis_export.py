"""Exported training tables: the same rows, names, labels and splits in every format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from synthetic_store import write_synthetic_library

from mfs.analysis.export import export
from mfs.analysis.splits import make_folds
from mfs.analysis.training_table import load_training_table
from mfs.store import Store

FEATURES = ["a", "b"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("export") / "store")
    write_synthetic_library(store, "lib", 60, ("x", "y", "z"), {"a": 3, "b": 2}, seed=4)
    return store


def test_parquet_has_named_columns_labels_split_and_provenance(store, tmp_path):
    summary = export(store, "lib", FEATURES, "auto", tmp_path / "t.parquet")
    assert (summary.rows, summary.feature_columns, summary.split) == (60, 5, "official")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column_names == ["track_id", "genre", "split", "artist", "genres",
                                  "a.embedding_mean[0]", "a.embedding_mean[1]",
                                  "a.embedding_mean[2]", "b.embedding_mean[0]",
                                  "b.embedding_mean[1]"]
    metadata = json.loads(table.schema.metadata[b"mfs.export"])
    assert [f["extractor"] for f in metadata["features"]] == FEATURES
    assert metadata["dropped"]["kept"] == 60
    frame = table.to_pandas()
    assert frame["split"].value_counts().to_dict() == {"train": 36, "validation": 12, "test": 12}
    wide = load_training_table(store, "lib", FEATURES, require_label=False)
    np.testing.assert_array_equal(frame.iloc[:, 5:].to_numpy(), wide.X)


def test_csv_kfold_column_is_the_benchmark_fold(store, tmp_path):
    export(store, "lib", FEATURES, "kfold", tmp_path / "t.csv", folds=3, seed=9)
    frame = pd.read_csv(tmp_path / "t.csv")
    wide = load_training_table(store, "lib", FEATURES)
    folds = make_folds("kfold", wide.genre, wide.split, wide.artist, seed=9, k=3)
    for fold in folds:
        assert set(frame.loc[fold.test, "split"]) == {fold.name}
    np.testing.assert_allclose(frame.iloc[:, 5:].to_numpy(), wide.X, rtol=1e-6)


def test_npz_loads_without_pickle(store, tmp_path):
    export(store, "lib", ["b"], "official", tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        assert data["X"].shape == (60, 2) and data["X"].dtype == np.float32
        assert data["feature_names"].tolist() == ["b.embedding_mean[0]", "b.embedding_mean[1]"]
        assert data["track_id"][0] == "lib:x.00000" and data["genre"][0] == "x"
        assert json.loads(str(data["metadata"]))["split"] == "official"
        assert json.loads(str(data["genres"][0])) == ["x"]  # FMA's genres_all, as JSON


def test_unknown_format(store, tmp_path):
    with pytest.raises(ValueError, match="export format"):
        export(store, "lib", FEATURES, "auto", tmp_path / "t.xlsx")

"""Importing external feature tables and per-window .npz files as extractors."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared
from synthetic_store import tracks_table

from mfs.analysis.importing import import_features
from mfs.analysis.selection import resolve
from mfs.analysis.stats import feature_stats
from mfs.analysis.training_table import load_training_table
from mfs.extractors.fma518.extractor import FEATURE_NAMES
from mfs.extractors.pooling import pool_by_id
from mfs.store import Store
from mfs.store.provenance import config_hash


@pytest.fixture()
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    ids = ["gtzan:blues.00000", "gtzan:blues.00001", "gtzan:rock.00000"]
    with store.writing("test") as writer:
        writer.replace_tracks("gtzan", tracks_table("gtzan", ids, ["blues", "blues", "rock"]))
    return store


def test_csv_by_filename(store, tmp_path):
    csv = tmp_path / "features.csv"
    csv.write_text("filename,tempo,rms,label\nblues.00000.wav,120,0.5,blues\n"
                   "rock.00000.wav,90,0.25,rock\nunknown.00009.wav,1,1,x\n")
    summary = import_features(store, [csv], "ext-table", "gtzan")
    assert (summary.written, summary.unmatched, summary.unmatched_examples) == (
        2, 1, ["unknown.00009.wav"])
    assert summary.skipped_columns == ["label"] and summary.columns == {"features": 2}
    table = load_training_table(store, "gtzan", ["ext-table"])
    assert table.track_ids.tolist() == ["gtzan:blues.00000", "gtzan:rock.00000"]
    assert table.feature_names == ["ext-table.features.tempo", "ext-table.features.rms"]
    np.testing.assert_allclose(table.X, [[120, 0.5], [90, 0.25]])

    row = store.connect().execute(
        'SELECT config_hash, config, model_hash, versions, created_at, run_id, n_windows '
        'FROM "ext_table" LIMIT 1').fetchall()[0]
    settings = json.loads(row[1])
    assert row[0] == config_hash("ext-table", settings) == summary.config_hash
    assert settings["id_column"] == "filename" and settings["feature_columns"] == ["tempo", "rms"]
    assert row[2] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert "pyarrow" in json.loads(row[3]) and row[4] is not None and row[5] and row[6] is None
    runs = store.connect().execute("SELECT kind, extractors FROM runs").fetchall()
    assert runs == [("import", ["ext-table"])]


def test_reimport_skips_stored_rows_and_new_content_is_added(store, tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("track_id,a\ngtzan:blues.00000,1\n")
    assert import_features(store, [csv], "ext", "gtzan").written == 1
    again = import_features(store, [csv], "ext", "gtzan")
    assert (again.written, again.already_stored) == (0, 1)
    csv.write_text("track_id,a\ngtzan:blues.00000,2\n")  # same settings, new content
    assert import_features(store, [csv], "ext", "gtzan").written == 1
    table = load_training_table(store, "gtzan", ["ext"])
    assert table.X.tolist() == [[2.0]]  # the view keeps the newest row


def test_parquet_with_numeric_ids_and_explicit_id_column(store, tmp_path):
    with store.writing("test") as writer:
        writer.replace_tracks("fma", tracks_table("fma", ["fma:2", "fma:5"], ["Hip-Hop", "Pop"],
                                                  kind="fma"))
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"tid": [2.0, 5.0], "x": [1, 2], "y": [0.5, 0.25]}), path)
    summary = import_features(store, [path], "fma-ext", "fma", id_column="tid",
                              exclude=("y",))
    assert summary.written == 2 and summary.columns == {"features": 1}
    with pytest.raises(KeyError, match="no id column 'nope'"):
        import_features(store, [path], "fma-ext", "fma", id_column="nope")


def test_npz_windows_pooled_per_track(store, tmp_path):
    ids = np.array(["blues/blues.00000.au"] * 3 + ["rock/rock.00000.au"] * 2)
    X = np.array([[0, 1], [2, 5], [4, 3], [1, 1], [3, 7]], dtype=np.float32)
    path = tmp_path / "windows.npz"
    np.savez(path, X=X, Y=np.zeros(5), IDS=ids)
    summary = import_features(store, [path], "win", "gtzan", pooling=("mean", "max", "std"))
    assert summary.columns == {"features_mean": 2, "features_max": 2, "features_std": 2}
    table = load_training_table(store, "gtzan", ["win:features_mean", "win:features_max",
                                                 "win:features_std"])
    np.testing.assert_allclose(table.X, [[2, 3, 4, 5, np.std([0, 2, 4]), np.std([1, 5, 3])],
                                         [2, 4, 3, 7, 1, 3]], rtol=1e-6)
    windows = store.connect().execute(
        "SELECT track_id, n_windows FROM win ORDER BY track_id").fetchall()
    assert windows == [("gtzan:blues.00000", 3), ("gtzan:rock.00000", 2)]


def test_pooling_matches_numpy():
    rng = np.random.default_rng(0)
    ids = rng.choice(["a", "b", "c"], size=50)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    names, pooled, counts = pool_by_id(ids, X, ("mean", "max", "min"))
    for i, name in enumerate(names):
        rows = X[ids == name]
        np.testing.assert_allclose(pooled["mean"][i], rows.mean(axis=0), rtol=1e-5)
        np.testing.assert_array_equal(pooled["max"][i], rows.max(axis=0))
        np.testing.assert_array_equal(pooled["min"][i], rows.min(axis=0))
        assert counts[i] == len(rows)


def test_pooled_std_is_accurate_with_a_large_mean_and_small_spread():
    """Imported windows are pooled as extraction pools them (Chan's update in float64):
    the E[x²]−μ² formula in float32 that imports used before loses the spread entirely."""
    rng = np.random.default_rng(1)
    X = (10_000 + 0.01 * rng.standard_normal((400, 3))).astype(np.float32)
    ids = np.array(["a", "b"] * 200)
    truth = np.array([X[ids == i].astype(np.float64).std(axis=0) for i in ("a", "b")])
    _, pooled, _ = pool_by_id(ids, X, ("std",))
    np.testing.assert_allclose(pooled["std"], truth, rtol=1e-5)
    old = np.array([np.sqrt(np.maximum((X[ids == i] ** 2).mean(axis=0)
                                       - X[ids == i].mean(axis=0) ** 2, 0)) for i in ("a", "b")])
    assert np.all(np.abs(old - truth) > 0.5 * truth)  # cancellation: off by more than half


def test_user_errors_are_one_line(store, tmp_path):
    bad = tmp_path / "f.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="use .csv, .parquet or .npz"):
        import_features(store, [bad], "e", "gtzan")
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_features(store, [tmp_path / "missing.csv"], "e", "gtzan")
    with pytest.raises(KeyError, match="has no tracks"):
        import_features(store, [bad], "e", "nolib")
    dup = tmp_path / "dup.csv"
    dup.write_text("filename,a\nblues.00000.wav,1\nblues/blues.00000.au,2\n")
    with pytest.raises(ValueError, match="several rows map to track gtzan:blues.00000"):
        import_features(store, [dup], "e", "gtzan")


def test_real_gtzan_feature_table(tmp_path):
    table_path = shared("gtzan-features") / "features_30_sec.csv"
    store = Store(tmp_path / "store")
    names = [line.split(",", 1)[0] for line in table_path.read_text().splitlines()[1:]]
    ids = [f"gtzan:{n.rsplit('.', 1)[0]}" for n in names]
    with store.writing("test") as writer:
        writer.replace_tracks("gtzan", tracks_table("gtzan", ids, [i[6:].split(".")[0]
                                                                   for i in ids]))
    summary = import_features(store, [table_path], "gtzan-librosa", "gtzan")
    assert (summary.written, summary.unmatched, summary.skipped_columns) == (1000, 0, ["label"])
    selection = resolve(store, store.connect(), "gtzan-librosa", "gtzan")
    assert selection.dim == 58 and "gtzan-librosa.features.tempo" in selection.feature_names
    stats = feature_stats(store, "gtzan-librosa", "gtzan").set_index("feature")
    assert stats.loc["gtzan-librosa.features.length", "n"] == 1000
    assert not stats["dead"].any() and (stats["nan_share"] == 0).all()


def test_fma_features_csv_layout(tmp_path):
    """FMA's features.csv (three header rows, an index-name row, NaN rows for tracks FMA
    failed on) imports with fma518's column names, so the two compare column by column."""
    store = Store(tmp_path / "store")
    with store.writing("test") as writer:
        writer.replace_tracks("fma", tracks_table("fma", ["fma:2", "fma:5", "fma:10"],
                                                  ["Hip-Hop", "Pop", "Pop"], kind="fma"))
    parts = [name.split("/") for name in FEATURE_NAMES]
    values = np.arange(2 * len(parts), dtype=np.float32).reshape(2, -1) / 7
    path = tmp_path / "features.csv"
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        for label, i in (("feature", 0), ("statistics", 1), ("number", 2)):
            out.writerow([label, *(p[i] for p in parts)])
        out.writerow(["track_id", *[""] * len(parts)])
        out.writerow(["2", *values[0]])
        out.writerow(["5", *values[1]])
        out.writerow(["10", *[""] * len(parts)])
    summary = import_features(store, [path], "fma-features", "fma")
    assert (summary.written, summary.unmatched, summary.columns) == (3, 0, {"features": 518})
    selection = resolve(store, store.connect(), "fma-features", "fma")
    assert selection.feature_names == [f"fma-features.features.{n}" for n in FEATURE_NAMES]
    rows = dict(store.connect().execute(
        "SELECT track_id, features FROM fma_features").fetchall())
    np.testing.assert_allclose(rows["fma:2"], values[0], rtol=1e-6)
    np.testing.assert_allclose(rows["fma:5"], values[1], rtol=1e-6)
    assert np.isnan(np.asarray(rows["fma:10"], dtype=float)).all()

"""Selections, the wide training join and per-dimension statistics over a small store
whose every value is known."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from synthetic_store import tracks_table

from mfs.analysis.selection import resolve
from mfs.analysis.stats import feature_stats, summarise
from mfs.analysis.training_table import load_training_table
from mfs.store import Store
from mfs.store.feature_rows import feature_table

IDS = [f"lib:t{i}" for i in range(6)]
GENRES = ["rock", "rock", "rock", "jazz", "jazz", None]
TAGS = ["guitar", "piano", "voice"]


def write(store: Store, extractor: str, ids: list[str], columns: dict, config: dict | None = None,
          names: dict | None = None) -> None:
    batch = feature_table(extractor, config or {"v": 1}, ids, columns, model_hash="none",
                          run_id=uuid.uuid4().hex, feature_names=names)
    with store.writing("test") as writer:
        writer.append_features(extractor, batch.column("config_hash")[0].as_py(), batch)


@pytest.fixture()
def store(tmp_path) -> Store:
    """6 tracks (one without genre); `tags` on all of them with named dims, NaN and inf;
    `emb` (two layers) on all but t4."""
    store = Store(tmp_path / "store")
    with store.writing("test") as writer:
        writer.replace_tracks("lib", tracks_table("lib", IDS, GENRES))
    tags = np.array([[1, 5, 0], [2, 5, 0], [3, 5, np.nan], [4, 5, np.inf], [5, 5, 0],
                     [6, 5, 0]], dtype=np.float32)
    write(store, "tags", IDS, {"tags_mean": tags}, names={"tags_mean": TAGS})
    layer = np.arange(10, dtype=np.float32).reshape(5, 2)
    keep = [i for i in IDS if i != "lib:t4"]
    write(store, "emb", keep, {"hidden_l01_mean": layer, "hidden_l02_mean": -layer})
    return store


def test_statistics_per_dimension(store):
    stats = feature_stats(store, "tags", library="lib")
    assert stats["feature"].tolist() == ["tags.tags_mean.guitar", "tags.tags_mean.piano",
                                         "tags.tags_mean.voice"]
    guitar, piano, voice = stats.to_dict("records")
    assert guitar["mean"] == pytest.approx(3.5)
    assert guitar["std"] == pytest.approx(np.std(np.arange(1, 7)))
    assert (guitar["min"], guitar["max"], guitar["dead"]) == (1, 6, False)
    assert piano["dead"] and piano["std"] == 0
    assert voice["nan_share"] == pytest.approx(1 / 6) and voice["inf_share"] == pytest.approx(1 / 6)
    assert voice["dead"]  # its finite values are all 0
    summary = summarise(stats).iloc[0]
    assert (summary["dims"], summary["dead_dims"], summary["tracks"]) == (3, 2, 6)


def test_statistics_by_genre(store):
    stats = feature_stats(store, "tags:tags_mean", library="lib", by="genre")
    guitar = stats[stats["dim"] == 0].set_index("group")
    assert guitar.loc["rock", "mean"] == pytest.approx(2.0)
    assert guitar.loc["jazz", "mean"] == pytest.approx(4.5)
    assert stats["group"].isna().sum() == 3  # the track without genre is its own group
    with pytest.raises(ValueError, match="cannot group"):
        feature_stats(store, "tags", by="track_id; DROP TABLE tracks")


def test_join_keeps_tracks_with_every_feature_and_reports_drops(store):
    table = load_training_table(store, "lib", ["tags", "emb:layer=2"])
    assert table.track_ids.tolist() == ["lib:t0", "lib:t1", "lib:t2", "lib:t3"]
    assert table.dropped == {"library_tracks": 6, "no_genre": 1, "missing tags": 0,
                             "missing emb:layer=2": 1, "kept": 4, "dropped": 2,
                             "non_finite_values": 2}
    assert table.feature_names == ["tags.tags_mean.guitar", "tags.tags_mean.piano",
                                   "tags.tags_mean.voice", "emb.hidden_l02_mean[0]",
                                   "emb.hidden_l02_mean[1]"]
    assert table.X.dtype == np.float32 and table.X.shape == (4, 5)
    np.testing.assert_array_equal(table.X[:, 3], [-0.0, -2.0, -4.0, -6.0])
    assert np.isnan(table.X[2, 2]) and np.isnan(table.X[3, 2])  # NaN and inf both become NaN
    assert table.genre.tolist() == ["rock", "rock", "rock", "jazz"]


def test_rows_lacking_a_column_added_by_later_parts_are_dropped(store):
    write(store, "grow", IDS[:2], {"a": np.ones((2, 2))})
    write(store, "grow", IDS[2:4], {"a": np.ones((2, 2)), "b": np.zeros((2, 3))})
    table = load_training_table(store, "lib", ["grow", "tags"])
    assert table.track_ids.tolist() == ["lib:t2", "lib:t3"] and table.X.shape == (2, 8)
    assert table.dropped["missing grow"] == 4 and table.dropped["kept"] == 2
    assert len(load_training_table(store, "lib", ["grow:a"]).track_ids) == 4


def test_unlabelled_tracks_kept_when_labels_are_not_needed(store):
    table = load_training_table(store, "lib", ["tags"], require_label=False)
    assert len(table.track_ids) == 6 and table.genre[-1] is None
    assert "no_genre" not in table.dropped


def test_selection_by_column_glob_and_layer(store):
    con = store.connect()
    assert [c.name for c in resolve(store, con, "emb", "lib").columns] == [
        "hidden_l01_mean", "hidden_l02_mean"]
    assert [c.name for c in resolve(store, con, "emb:*l01*", "lib").columns] == [
        "hidden_l01_mean"]
    assert [c.name for c in resolve(store, con, "emb:layer=1", "lib").columns] == [
        "hidden_l01_mean"]
    with pytest.raises(KeyError, match="no column matching 'layer=3'"):
        resolve(store, con, "emb:layer=3", "lib")
    with pytest.raises(KeyError, match="no stored features for extractor 'nope'"):
        resolve(store, con, "nope", "lib")


def test_two_configs_must_be_chosen_explicitly(store):
    write(store, "tags", IDS[:2], {"tags_mean": np.zeros((2, 3))}, config={"v": 2})
    with pytest.raises(ValueError, match=r"2 configs .* pick one as tags@<config_hash>"):
        load_training_table(store, "lib", ["tags"])
    hashes = [h for (h,) in store.connect().execute(
        "SELECT config_hash FROM tags GROUP BY 1 ORDER BY count(*)").fetchall()]
    sizes = [len(load_training_table(store, "lib", [f"tags@{h}"]).track_ids) for h in hashes]
    assert sizes == [2, 5]
    with pytest.raises(KeyError, match="no config 'abc'"):
        load_training_table(store, "lib", ["tags@abc"])


def test_same_column_twice_is_refused(store):
    with pytest.raises(ValueError, match="selected twice"):
        load_training_table(store, "lib", ["emb", "emb:layer=1"])


def test_unknown_library(store):
    with pytest.raises(KeyError, match="unknown library 'other'"):
        load_training_table(store, "other", ["tags"])

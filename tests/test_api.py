"""The Python API as a notebook uses it, on a small real store: four GTZAN excerpts with
their published splits, fma518 and musicnn-msd extracted in this process. Every table the
API returns must equal what `mfs export` / `mfs sql` write and print."""

from __future__ import annotations

import doctest
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import REPO, invoke, scan, shared

from mfs import open_store
from mfs.store import Store

# train: rock, hiphop; test: hiphop.00000; no split: country.00008 (in none of the lists)
CLIPS = ("rock/rock.00000.flac", "hiphop/hiphop.00002.flac", "hiphop/hiphop.00000.flac",
         "country/country.00008.flac")
HAS_MUSICNN = importlib.util.find_spec("musicnn") is not None
EXTRACTORS = ["fma518", "musicnn-msd"] if HAS_MUSICNN else ["fma518"]
FEATURES = ",".join(EXTRACTORS)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from mfs.flows.extract import run_extract

    genres = tmp_path_factory.mktemp("gtzan") / "genres"
    for clip in CLIPS:
        (genres / clip).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared("gtzan-excerpts/genres") / clip, genres / clip)
    store = Store(tmp_path_factory.mktemp("api") / "store")
    scan(store, "gtzan", "gtzan", genres, split_dir=shared("gtzan-musicnn-taggrams/splits"))
    counts = run_extract(store, "gtzan", EXTRACTORS)["extractors"]
    assert all(c["ok"] == len(CLIPS) for c in counts.values()), counts
    return store.root


def test_training_table_is_what_mfs_export_writes(root: Path, tmp_path: Path) -> None:
    s = open_store(root)
    t = s.training_table("gtzan", EXTRACTORS, split="official")
    frame = t.to_polars()
    for suffix in ("parquet", "csv", "npz"):
        out = tmp_path / f"train.{suffix}"
        code, _, err = invoke("export", "gtzan", "--features", FEATURES, "--split", "official",
                              "--out", str(out), "--store", str(root))
        assert code == 0, err
    written = pl.read_parquet(tmp_path / "train.parquet")
    assert frame.equals(written) and frame.columns == written.columns
    assert pq.read_schema(tmp_path / "train.parquet").metadata[b"mfs.export"] == \
        json.dumps(t.metadata).encode()
    csv = pd.read_csv(tmp_path / "train.csv")
    assert list(csv.columns) == list(t.to_pandas().columns)
    np.testing.assert_allclose(csv[t.feature_names].to_numpy(), t.X, rtol=1e-6)
    with np.load(tmp_path / "train.npz", allow_pickle=False) as npz:
        assert npz["feature_names"].tolist() == t.feature_names
        np.testing.assert_array_equal(npz["X"], t.X)

    # The per-dimension names the extractors gave are the column names, in every format.
    assert "fma518.features.chroma_cens/kurtosis/01" in written.columns
    assert t.feature_names[:518] == [f"fma518.features.{name}" for name in _fma518_names()]
    if HAS_MUSICNN:
        from mfs.extractors.musicnn.extractor import MSD_TAGS

        assert [f"musicnn-msd.tags_mean.{tag}" for tag in MSD_TAGS] == \
            [n for n in written.columns if n.startswith("musicnn-msd.tags_mean.")]
        assert "musicnn-msd.tags_mean.rock" in csv.columns
    assert t.X.shape == (len(CLIPS), 518 + (450 if HAS_MUSICNN else 0))
    assert t.X.dtype == np.float32 and np.isfinite(t.X).all()


def test_labels_splits_and_ids_come_from_the_tracks(root: Path) -> None:
    s = open_store(root)
    t = s.training_table("gtzan", "fma518", split="official")
    tracks = s.sql("SELECT track_id, genre, split FROM tracks ORDER BY track_id")
    assert t.track_id.tolist() == tracks["track_id"].to_list()
    assert t.y.tolist() == tracks["genre"].to_list()
    assert t.split.tolist() == [None, "test", "train", "train"]
    assert t.track_id[-1] == "gtzan:rock.00000"
    assert repr(t) == "TrainingData('gtzan': 4 tracks × 518 features, split 'official')"


def test_population_options_are_mfs_benchs(root: Path, tmp_path: Path) -> None:
    s = open_store(root)
    t = s.training_table("gtzan", "fma518", "official", genres="hiphop,rock",
                         where="track_id <> 'gtzan:hiphop.00000'")
    assert t.y.tolist() == ["hiphop", "rock"]
    out = tmp_path / "pop.parquet"
    code, _, err = invoke("export", "gtzan", "--features", "fma518", "--split", "official",
                          "--genres", "hiphop,rock",
                          "--where", "track_id <> 'gtzan:hiphop.00000'", "--out", str(out),
                          "--store", str(root))
    assert code == 0, err
    assert pl.read_parquet(out)["track_id"].to_list() == t.track_id.tolist()
    assert t.metadata["population"]["steps"][0]["step"] == "--genres hiphop,rock"
    with pytest.raises(ValueError, match="--genres: no track is labelled 'polka'"):
        s.training_table("gtzan", "fma518", genres=["polka"])


def test_features_are_the_newest_row_per_track(root: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    shutil.copytree(root, store.root)
    s = open_store(store.root)
    before = s.features("fma518", library="gtzan", as_="arrow")
    assert before.num_rows == len(CLIPS) and before["track_id"].to_pylist() == sorted(
        before["track_id"].to_pylist())
    names = json.loads(before.schema.metadata[b"mfs.feature_names"])
    assert names == {"features": s.feature_names("fma518")}
    # Re-extracting a track appends a newer row (here: a copy of a stored part's first row,
    # an hour newer, every value 7); a raw glob of the folder then holds both rows.
    part = pq.read_table(sorted(store.features_dir.glob("fma518/*/*.parquet"))[0])
    newer = part.filter(pc.equal(part["track_id"], before["track_id"][0]))
    stamp = newer["created_at"][0].as_py() + timedelta(hours=1)
    newer = newer.set_column(newer.schema.get_field_index("created_at"), "created_at",
                             pa.array([stamp], newer.schema.field("created_at").type))
    values = pa.array(np.full(518, 7.0, dtype=np.float32))
    newer = newer.set_column(newer.schema.get_field_index("features"),
                             newer.schema.field("features"),
                             pa.FixedSizeListArray.from_arrays(values, 518))
    with store.writing("a newer row") as writer:
        writer.append_features("fma518", newer["config_hash"][0].as_py(), newer)
    raw = pl.read_parquet(store.features_dir / "fma518" / "*" / "*.parquet")
    assert raw.height == len(CLIPS) + 1
    after = s.features("fma518", library="gtzan")
    assert isinstance(after, pl.DataFrame) and after.height == len(CLIPS)
    first = after.filter(pl.col("track_id") == before["track_id"][0].as_py())
    assert first["features"].to_list() == [[7.0] * 518]
    t = s.training_table("gtzan", "fma518")
    assert (t.X[0] == 7.0).all() and t.track_id[0] == before["track_id"][0].as_py()
    lazy = s.features("fma518", as_="lazy")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.select(pl.len()).collect().item() == len(CLIPS)


def test_features_match_the_training_table(root: Path) -> None:
    s = open_store(root)
    t = s.training_table("gtzan", "fma518")
    rows = s.features("fma518:features", as_="pandas")
    np.testing.assert_array_equal(np.stack(rows["features"].to_numpy()), t.X)
    with pytest.raises(KeyError, match="no stored features for extractor 'nope'"):
        s.features("nope")
    with pytest.raises(KeyError, match="unknown library 'fma'"):
        s.features("fma518", library="fma")
    with pytest.raises(ValueError, match="as_='numpy': use one of polars, lazy, arrow, pandas"):
        s.features("fma518", as_="numpy")


def test_sql_is_mfs_sql(root: Path, tmp_path: Path) -> None:
    s = open_store(root)
    query = "SELECT genre, count(*) AS n FROM tracks GROUP BY genre ORDER BY genre"
    frame = s.sql(query)
    assert frame.to_dicts() == [{"genre": "country", "n": 1}, {"genre": "hiphop", "n": 2},
                                {"genre": "rock", "n": 1}]
    code, out, _ = invoke("sql", query, "--format", "json", "--store", str(root))
    assert code == 0 and json.loads(out) == frame.to_dicts()
    assert s.sql("SELECT count(*) AS n FROM fma518", as_="arrow").to_pylist() == [{"n": 4}]
    with pytest.raises(ValueError, match="COPY statements are refused"):
        s.sql(f"COPY tracks TO '{tmp_path / 'x.csv'}'")
    with pytest.raises(ValueError, match="reads only the store's files"):
        s.sql(f"SELECT * FROM read_csv('{REPO / 'pyproject.toml'}')")
    assert not (tmp_path / "x.csv").exists()


def test_open_store_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"no store at {tmp_path}"):
        open_store(tmp_path)


def test_import_mfs_stays_light() -> None:
    code = ("import sys, mfs; from mfs import open_store; "
            "print(sorted(m for m in ('torch', 'sklearn', 'polars', 'prefect') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_readme_notebook_example_is_true(root: Path) -> None:
    """The README's notebook section, run as a doctest against this store."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Read the store in a notebook", 1)[1].split("\n## ", 1)[0]
    example = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    if not HAS_MUSICNN:
        pytest.skip("the README example uses musicnn-msd (musicnn wheel not installed)")
    example = example.replace('"data/store"', repr(str(root)))
    test = doctest.DocTestParser().get_doctest(example, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert test.examples and runner.summarize(verbose=False).failed == 0


def _fma518_names() -> tuple[str, ...]:
    from mfs.extractors.fma518.extractor import FEATURE_NAMES

    return FEATURE_NAMES

"""The store's one row builder and file hash: every writer stores the same rows and hashes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pytest

from mfs.store.columns import column_name, parse_column
from mfs.store.feature_rows import FeatureRows, feature_table
from mfs.store.provenance import config_hash, feed_file, file_sha256, files_sha256
from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE, FEATURE_NAMES_KEY, embedding_type

NAMES = {"tags_mean": ["rock", "jazz", "pop"]}


def expected_schema(names: dict | None) -> pa.Schema:
    """The schema stored feature parts have always had (written out, not built)."""
    fields = [*FEATURE_KEY_AND_PROVENANCE, pa.field("tags_mean", pa.list_(pa.float32(), 3)),
              pa.field("emb_l01_max", embedding_type(2))]
    metadata = {b"mfs.feature_names": json.dumps(names).encode()} if names else {}
    metadata[b"mfs.layers"] = b'{"emb": 2}'
    return pa.schema(fields, metadata=metadata)


@pytest.mark.parametrize("names", [NAMES, None])
def test_rows_and_matrices_give_the_stored_schema_and_values(names):
    matrices = {"tags_mean": np.arange(6, dtype=np.float32).reshape(2, 3),
                "emb_l01_max": np.ones((2, 2), np.float64)}
    builder = FeatureRows("x", {"b": 1, "a": [2]}, {"tags_mean": 3, "emb_l01_max": 2},
                          model_hash="m", run_id="r", feature_names=names)
    by_rows = builder.table([
        builder.row(f"lib:{i}", {c: m[i] for c, m in matrices.items()}, n_windows=4,
                    seconds=None) for i in range(2)])
    by_matrix = feature_table("x", {"b": 1, "a": [2]}, ["lib:0", "lib:1"], matrices,
                              model_hash="m", run_id="r", n_windows=np.array([4, 4]),
                              feature_names=names)
    for table in (by_rows, by_matrix):
        assert table.schema.equals(expected_schema(names), check_metadata=True)
        assert table.column("config_hash").to_pylist() == [config_hash("x", {"a": [2], "b": 1})] * 2
        assert table.column("config").to_pylist() == ['{"a": [2], "b": 1}'] * 2
    keep = [c for c in by_rows.column_names if c != "created_at"]
    assert by_rows.select(keep).equals(by_matrix.select(keep))
    if names:
        assert json.loads(by_rows.schema.metadata[FEATURE_NAMES_KEY]) == NAMES


def test_a_matrix_of_the_wrong_shape_is_refused():
    builder = FeatureRows("x", {}, {"tags_mean": 3}, model_hash="m", run_id="r")
    with pytest.raises(ValueError, match="tags_mean"):
        builder.from_matrices(["lib:0"], {"tags_mean": np.zeros((2, 3))})


def test_file_hashes_keep_their_stored_values(tmp_path):
    """One streaming file hash gives what model_hash, imports and fingerprints stored."""
    big = tmp_path / "b.bin"
    big.write_bytes(bytes(range(256)) * 9000)  # over one read chunk
    small = tmp_path / "a.txt"
    small.write_bytes(b"weights")
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert files_sha256([big, small]) == hashlib.sha256(
        b"a.txt" + b"weights" + b"b.bin" + big.read_bytes()).hexdigest()
    with big.open("rb") as handle:
        handle.seek(7)  # an open handle is hashed from its start
        digest = feed_file(hashlib.blake2b(digest_size=16), handle)
    assert digest.hexdigest() == hashlib.blake2b(big.read_bytes(), digest_size=16).hexdigest()


def test_code_version_one_hashes_as_before_versions_existed() -> None:
    """Stores extracted before versions existed keep their hashes; other code is new."""
    before = hashlib.sha256(json.dumps({"a": 1, "extractor": "x"}).encode()).hexdigest()[:12]
    assert config_hash("x", {"a": 1}) == config_hash("x", {"a": 1}, 1) == before
    others = {config_hash("x", {"a": 1}, code) for code in (2, "source:0123456789ab")}
    assert len(others) == 2 and before not in others
    rows = FeatureRows("x", {"a": 1}, {"e": 1}, model_hash="m", run_id="r", code=2)
    assert rows.constant["config_hash"] == config_hash("x", {"a": 1}, 2)


@pytest.mark.parametrize(("name", "parsed"), [
    ("features", ("features", None, None)),
    ("tags_mean", ("tags", None, "mean")),
    ("hidden_state_l07_std", ("hidden_state", 7, "std")),
    ("my_l2_model_max", ("my_l2_model", None, "max")),
    ("emb_l12", ("emb_l12", None, None)),  # no statistic: a whole-track value as named
])
def test_column_names_are_built_and_parsed_in_one_place(name, parsed):
    assert parse_column(name) == parsed
    output, layer, stat = parsed
    assert column_name(output, stat, layer) == name


def test_parts_written_before_the_precision_column_still_read(tmp_path):
    """A part without `precision` (stored before it existed) reads as null beside new ones."""
    import pyarrow.parquet as pq

    from mfs.store.store import Store

    store = Store(tmp_path)
    rows = FeatureRows("x", {}, {"emb_mean": 2}, model_hash="m", run_id="r",
                       precision="bfloat16")
    new = rows.table([rows.row("lib:new", {"emb_mean": np.ones(2)}, n_windows=1, seconds=1.0)])
    old = rows.table([rows.row("lib:old", {"emb_mean": np.ones(2)}, n_windows=1, seconds=1.0)])
    with store.writing("test") as writer:
        part = writer.append_features("x", rows.constant["config_hash"], new)
    pq.write_table(old.drop_columns(["precision"]), part.parent / "part-0-old.parquet")
    found = store.connect().execute("SELECT track_id, precision FROM x ORDER BY 1").fetchall()
    assert found == [("lib:new", "bfloat16"), ("lib:old", None)]

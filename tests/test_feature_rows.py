"""The store's one row builder: extraction rows and imported matrices give the same batch."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from mfs.store.feature_rows import FeatureRows, feature_table
from mfs.store.provenance import config_hash
from mfs.store.schema import FEATURE_KEY_AND_PROVENANCE, FEATURE_NAMES_KEY, embedding_type

NAMES = {"tags_mean": ["rock", "jazz", "pop"]}


def expected_schema(names: dict | None) -> pa.Schema:
    """The schema stored feature parts have always had (written out, not built)."""
    fields = [*FEATURE_KEY_AND_PROVENANCE, pa.field("tags_mean", pa.list_(pa.float32(), 3)),
              pa.field("emb_l01_max", embedding_type(2))]
    metadata = {b"mfs.feature_names": json.dumps(names).encode()} if names else None
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

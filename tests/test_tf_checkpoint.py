"""The TensorBundle reader on the real musicnn checkpoints, and on corrupted copies of them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from mfs.extractors.musicnn.tf_checkpoint import (
    CheckpointError,
    crc32c,
    masked_crc32c,
    read_checkpoint,
)

DATA_FILE = ".data-00000-of-00001"


def _bitwise_crc32c(data: bytes) -> int:
    """The textbook bit-at-a-time CRC-32C, to check the vectorised one against."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.fixture(scope="module")
def mtt_dir() -> Path:
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("musicnn wheel not installed: .venv/bin/pip install --no-deps musicnn==0.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "MTT_musicnn"


@pytest.fixture
def checkpoint_copy(mtt_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the MTT checkpoint; returns its .index path."""
    for name in (".index", DATA_FILE):
        shutil.copyfile(mtt_dir / name, tmp_path / name)
    return tmp_path / ".index"


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_crc32c_known_values() -> None:
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert masked_crc32c(b"") == 0xA282EAD8


@pytest.mark.parametrize("length", [1, 2, 3, 15, 16, 17, 255, 1000, 4099])
def test_crc32c_matches_bitwise(length: int) -> None:
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    assert crc32c(data) == _bitwise_crc32c(data)


def test_reads_musicnn_checkpoint(mtt_dir: Path) -> None:
    tensors = read_checkpoint(mtt_dir / ".index")
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert tensors["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert tensors["dense/kernel"].shape == (1506, 200)
    assert tensors["dense_1/bias"].shape == (50,)
    assert tensors["batch_normalization_9/moving_variance"].shape == (1506,)
    assert tensors["beta1_power"].shape == ()
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors.values())
    assert (tensors["batch_normalization_9/moving_variance"] > 0).all()


def test_corrupted_tensor_names_file_and_tensor(checkpoint_copy: Path) -> None:
    _flip_byte(checkpoint_copy.with_name(DATA_FILE), 1000)
    with pytest.raises(CheckpointError, match=rf"{DATA_FILE}: checksum mismatch in tensor"):
        read_checkpoint(checkpoint_copy)


def test_corrupted_index_block_is_caught(checkpoint_copy: Path) -> None:
    _flip_byte(checkpoint_copy, 40)
    with pytest.raises(CheckpointError, match=r"\.index: checksum mismatch in block"):
        read_checkpoint(checkpoint_copy)


def test_truncated_index_is_caught(checkpoint_copy: Path) -> None:
    checkpoint_copy.write_bytes(checkpoint_copy.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"\.index: bad table magic"):
        read_checkpoint(checkpoint_copy)


def test_missing_data_shard_names_it(checkpoint_copy: Path) -> None:
    checkpoint_copy.with_name(DATA_FILE).unlink()
    with pytest.raises(CheckpointError, match=rf"{DATA_FILE}: cannot read data shard"):
        read_checkpoint(checkpoint_copy)

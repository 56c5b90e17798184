"""Read TensorFlow 1 checkpoints (TensorBundle V2) into numpy arrays, without TensorFlow.

A checkpoint is `<prefix>.index`, an uncompressed LevelDB-style table mapping each tensor name
to a `BundleEntryProto` (dtype, shape, shard, offset, size, crc32c), and
`<prefix>.data-NNNNN-of-MMMMM` shards holding the raw little-endian tensor bytes. Published
weights (musicnn) ship only in this format, and installing TensorFlow 1 to read ~10 MB of
floats is not worth it; the format is small enough to parse by hand. Every block and tensor
checksum is verified, so a truncated or corrupted download fails loudly instead of giving
silently wrong embeddings.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c
_CRC_MASK_DELTA = 0xA282EAD8
_CRC32C_POLY = 0x82F63B78  # Castagnoli, reflected

# TensorFlow DataType enum values -> little-endian numpy dtypes (numeric types only).
_DTYPES = {
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
    17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message is one line naming the file at fault."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives in the data shards, as recorded in the index."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


# --- crc32c ------------------------------------------------------------------------------
def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_CRC32C_POLY), table >> 1)
    return table.astype(np.uint32)


_CRC_TABLE = _byte_table()


def _feed(registers: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Advance CRC registers (lanes,) over byte columns (length, lanes), all lanes at once."""
    for column in columns:
        registers = _CRC_TABLE[(registers ^ column) & 0xFF] ^ (registers >> 8)
    return registers


@functools.lru_cache(maxsize=64)
def _zero_shift_tables(length: int) -> np.ndarray:
    """Four byte tables for the linear map "feed `length` zero bytes" on a CRC register.

    The CRC register update is linear over GF(2), so crc(state, chunk) equals
    shift(state) xor crc(0, chunk); this is what lets chunks be hashed in parallel.
    """
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    images = _feed(basis, np.zeros((length, 32), dtype=np.uint8))
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    return np.stack([
        np.bitwise_xor.reduce(np.where(bits, images[8 * k : 8 * k + 8], 0), axis=1)
        for k in range(4)
    ]).astype(np.uint32)


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli) of `data`.

    Pure Python byte loops take seconds on a 10 MB checkpoint, so the data is cut into
    ~sqrt(n) equal chunks hashed side by side with numpy, then chained with the zero-shift map.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    chunk = max(1, math.isqrt(len(buf)))
    n_chunks = len(buf) // chunk
    partial = _feed(np.zeros(n_chunks, np.uint32), buf[: n_chunks * chunk].reshape(-1, chunk).T)
    shift = _zero_shift_tables(chunk).tolist()
    register = 0xFFFFFFFF
    for value in partial.tolist():
        register = (shift[0][register & 0xFF] ^ shift[1][(register >> 8) & 0xFF]
                    ^ shift[2][(register >> 16) & 0xFF] ^ shift[3][register >> 24] ^ value)
    tail = buf[n_chunks * chunk :, None]
    register = int(_feed(np.array([register], np.uint32), tail)[0])
    return register ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | memoryview) -> int:
    """The masked CRC that LevelDB and TensorFlow store (masking avoids CRCs of CRCs)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


# --- wire formats -----------------------------------------------------------------------
def _varint(buf: bytes, pos: int, path: Path) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; returns (value, next position)."""
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise CheckpointError(f"{path}: malformed varint at byte {pos}")


def _proto_fields(buf: bytes, path: Path) -> list[tuple[int, int | bytes]]:
    """Split a protobuf message into (field number, value) pairs, in order.

    Varints and fixed32/fixed64 come back as ints, length-delimited fields as bytes.
    """
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, path)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == 0:
            value, pos = _varint(buf, pos, path)
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        elif wire_type == 2:
            length, pos = _varint(buf, pos, path)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise CheckpointError(f"{path}: unsupported protobuf wire type {wire_type}")
        if pos > len(buf):
            raise CheckpointError(f"{path}: truncated protobuf field {number}")
        fields.append((number, value))
    return fields


def _shape(buf: bytes, path: Path) -> tuple[int, ...]:
    """Dimensions of a TensorShapeProto (field 2: repeated Dim, whose field 1 is the size)."""
    dims = []
    for number, dim in _proto_fields(buf, path):
        if number == 2 and isinstance(dim, bytes):
            sizes = [v for n, v in _proto_fields(dim, path) if n == 1 and isinstance(v, int)]
            dims.append(sizes[0] if sizes else 0)
    return tuple(dims)


def _bundle_entry(name: str, buf: bytes, path: Path) -> BundleEntry:
    """Decode a BundleEntryProto; partitioned (sliced) tensors are not supported."""
    fields: dict[int, int | bytes] = {}
    for number, value in _proto_fields(buf, path):
        if number == 7:
            raise CheckpointError(f"{path}: tensor {name!r} is partitioned, not supported")
        fields[number] = value
    shape = fields.get(2, b"")
    numbers = [fields.get(n, 0) for n in (1, 3, 4, 5, 6)]  # dtype, shard, offset, size, crc
    ints = [v for v in numbers if isinstance(v, int)]
    if not isinstance(shape, bytes) or len(ints) != len(numbers):
        raise CheckpointError(f"{path}: malformed index entry for tensor {name!r}")
    return BundleEntry(ints[0], _shape(shape, path), *ints[1:])


# --- the SSTable ------------------------------------------------------------------------
def _block(index: bytes, handle: bytes, path: Path) -> bytes:
    """Contents of the block a BlockHandle (offset, size varints) points to, checksum verified."""
    offset, pos = _varint(handle, 0, path)
    size, _ = _varint(handle, pos, path)
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(index):
        raise CheckpointError(f"{path}: block at byte {offset} runs past the end of the file")
    compression = index[end]
    stored_crc = int.from_bytes(index[end + 1 : end + 5], "little")
    if masked_crc32c(index[offset : end + 1]) != stored_crc:
        raise CheckpointError(f"{path}: checksum mismatch in block at byte {offset}")
    if compression != 0:
        raise CheckpointError(f"{path}: compressed blocks (type {compression}) not supported")
    return index[offset:end]


def _block_entries(block: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of a block; keys are prefix-compressed against the previous key."""
    if len(block) < 4:
        raise CheckpointError(f"{path}: block too short")
    n_restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 * (n_restarts + 1)
    if end < 0:
        raise CheckpointError(f"{path}: block restart array larger than the block")
    entries: list[tuple[bytes, bytes]] = []
    key, pos = b"", 0
    while pos < end:
        shared, pos = _varint(block, pos, path)
        unshared, pos = _varint(block, pos, path)
        value_length, pos = _varint(block, pos, path)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    if pos != end:
        raise CheckpointError(f"{path}: block entries overrun the restart array")
    return entries


def read_index(index_path: Path) -> tuple[int, dict[str, BundleEntry]]:
    """The number of data shards, and name -> BundleEntry for every tensor in a `.index` file."""
    index = index_path.read_bytes()
    if len(index) < _FOOTER_SIZE:
        raise CheckpointError(f"{index_path}: too short to be a checkpoint index")
    footer = index[-_FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise CheckpointError(f"{index_path}: bad table magic, not a TensorBundle index")
    _, pos = _varint(footer, 0, index_path)  # skip the metaindex handle: it has no tensors
    _, pos = _varint(footer, pos, index_path)
    index_block = _block(index, footer[pos:], index_path)
    n_shards = 1
    entries: dict[str, BundleEntry] = {}
    for _, handle in _block_entries(index_block, index_path):
        for key, value in _block_entries(_block(index, handle, index_path), index_path):
            if key:  # the empty key holds the BundleHeaderProto
                name = key.decode()
                entries[name] = _bundle_entry(name, value, index_path)
            else:
                n_shards = _header_shards(value, index_path)
    return n_shards, entries


def _header_shards(buf: bytes, path: Path) -> int:
    """Number of data shards from the BundleHeaderProto; big-endian bundles are refused."""
    fields = dict(_proto_fields(buf, path))
    if fields.get(2, 0) != 0:
        raise CheckpointError(f"{path}: big-endian checkpoint, not supported")
    return int(fields.get(1, 1))


def _shard_path(index_path: Path, shard_id: int, n_shards: int) -> Path:
    prefix = str(index_path)[: -len(".index")]
    return Path(f"{prefix}.data-{shard_id:05d}-of-{n_shards:05d}")


def _tensor(name: str, entry: BundleEntry, shard: bytes, path: Path) -> np.ndarray:
    """Decode one tensor from its shard bytes after verifying its masked crc32c."""
    if entry.dtype not in _DTYPES:
        raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {entry.dtype}")
    raw = memoryview(shard)[entry.offset : entry.offset + entry.size]
    if len(raw) != entry.size:
        raise CheckpointError(f"{path}: tensor {name!r} runs past the end of the file")
    if masked_crc32c(raw) != entry.crc32c:
        raise CheckpointError(f"{path}: checksum mismatch in tensor {name!r}")
    array = np.frombuffer(raw, dtype=_DTYPES[entry.dtype])
    if array.size != math.prod(entry.shape):
        raise CheckpointError(f"{path}: tensor {name!r} size does not match shape {entry.shape}")
    return array.reshape(entry.shape).copy()


def read_checkpoint(index_path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint whose `.index` file is `index_path`, by variable name.

    The data shards are found beside it (`<prefix>.data-NNNNN-of-MMMMM`).
    """
    index_path = Path(index_path)
    if not str(index_path).endswith(".index"):
        raise CheckpointError(f"{index_path}: expected the checkpoint's .index file")
    n_shards, entries = read_index(index_path)
    tensors: dict[str, np.ndarray] = {}
    for shard_id in range(n_shards):
        shard_path = _shard_path(index_path, shard_id, n_shards)
        try:
            shard = shard_path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{shard_path}: cannot read data shard ({error})") from None
        for name, entry in entries.items():
            if entry.shard_id == shard_id:
                tensors[name] = _tensor(name, entry, shard, shard_path)
    return tensors

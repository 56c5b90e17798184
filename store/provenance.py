"""What identifies stored numbers: config hashes, file hashes and the versions of the
libraries that shape them, recorded with every run and row."""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

TRACKED_PACKAGES = ("music-feature-store", "numpy", "torch", "soundfile", "soxr", "av",
                    "pyarrow", "duckdb", "transformers", "scikit-learn", "xgboost-cpu")


# The code version that hashes as before versions existed (store/SCHEMA.md): the built-in
# extractors' outputs stored until then are version 1, so no store re-extracts them.
FIRST_VERSION = 1
# The payload key of any other code version; no config field can be named so (a dot).
CODE_KEY = "mfs.code"


def config_hash(extractor: str, config: dict, code: int | str = FIRST_VERSION) -> str:
    """sha256(extractor name + config JSON [+ code version])[:12]: the store's identity of
    an output, so a new config, or new code, is a new folder beside the old one, never an
    overwrite. `code` is the extractor's version, or its source's hash (`source_version`)."""
    payload = {"extractor": extractor, **config}
    if code != FIRST_VERSION:
        payload[CODE_KEY] = code
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def source_version(path: Path) -> str:
    """`source:<sha256[:12]>` of a source file: the code version of a plug-in extractor
    that declares none, so any edit of its file is a new output."""
    return f"source:{file_sha256(path)[:12]}"


class Digest(Protocol):
    """What `feed_file` needs of a hashlib object (sha256, blake2b, …)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


D = TypeVar("D", bound=Digest)
FILE_CHUNK = 1 << 20  # read size: model files and audio are streamed, never held whole


def feed_file(digest: D, source: Path | BinaryIO) -> D:
    """Feed every byte of a file (a path, or an open binary handle, read from its start)
    into `digest`, a chunk at a time, and return it: the one way files are hashed (model
    files, imported feature files, the fingerprint of audio without known structure)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return feed_file(digest, handle)
    buffer = memoryview(bytearray(FILE_CHUNK))
    source.seek(0)
    while count := source.readinto(buffer):
        digest.update(buffer[:count])
    return digest


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes."""
    return feed_file(hashlib.sha256(), path).hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """sha256 (hex) over each file's name then bytes, in path order: a model's identity."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        feed_file(digest, path)
    return digest.hexdigest()


@cache
def library_versions() -> str:
    """JSON object of Python and installed package versions (absent packages omitted)."""
    versions = {"python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return json.dumps(versions, sort_keys=True)

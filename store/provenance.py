"""Versions of the libraries that shape stored numbers, recorded with every run and row."""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from importlib import metadata

TRACKED_PACKAGES = ("music-feature-store", "numpy", "torch", "soundfile", "soxr", "av",
                    "pyarrow", "duckdb", "transformers", "scikit-learn", "xgboost-cpu")


def config_hash(extractor: str, config: dict) -> str:
    """sha256(extractor name + config JSON)[:12]: the store's identity of an output, so a
    new config is a new folder beside the old one, never an overwrite."""
    payload = json.dumps({"extractor": extractor, **config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


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

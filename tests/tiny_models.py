"""Tiny random models of every Hugging Face extractor, saved in the layouts users have:
the Hugging Face cache by hub id, and a researcher's model folder with the weights renamed
from `.bin` to `.pth`. They are built from the real config classes with 2 layers and small
widths, so the product's own finding and loading code runs on them as on the real models.

Each family registers `TINY[extractor name] = build(folder)`, which writes config.json
(and what else the real checkpoint has) plus `model.safetensors` into `folder`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from mfs.extractors import registry

# extractor name -> writes a tiny model of its kind into the folder it is given
TINY: dict[str, Callable[[Path], None]] = {}


def tiny(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    """Register `build` as the tiny model of extractor `name`."""
    def register(build: Callable[[Path], None]) -> Callable[[Path], None]:
        TINY[name] = build
        return build
    return register


def write_hf_cache(cache: Path, hub_id: str, folder: Path) -> Path:
    """Put `folder`'s files into a Hugging Face hub cache as a download of `hub_id` would:
    blobs named by their hash, a snapshot of symlinks, `refs/main`. Returns the snapshot."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    commit = hashlib.sha1(hub_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        link = snapshot / path.name
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def rename_weights_to_pth(folder: Path) -> None:
    """What researchers' model trees often hold: the weights as `pytorch_model.pth`."""
    import torch
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.pth")
    weights.unlink()


def hf_extractors() -> dict[str, object]:
    """Every registered extractor whose model comes in Hugging Face's layout."""
    from mfs.extractors.hf.extractor import HFExtractor

    extractors = {name: registry.create(name) for name in registry.EXTRACTORS}
    return {name: e for name, e in extractors.items() if isinstance(e, HFExtractor)}


def tiny_hf_home(home: Path) -> dict[str, str]:
    """A Hugging Face home whose cache holds a tiny model of every registered Hugging Face
    extractor, under its hub id; returns the environment that points at it, offline."""
    for name, extractor in hf_extractors().items():
        folder = home / "built" / name
        if not folder.exists():
            folder.mkdir(parents=True)
            TINY[name](folder)
        write_hf_cache(home / "hub", extractor.source.hub_id, folder)
    return {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1"}


# Each family's tiny models (they register themselves in TINY), one import per family.
import tiny_ast  # noqa: E402, F401
import tiny_clap  # noqa: E402, F401
import tiny_encodec  # noqa: E402, F401
import tiny_hubert  # noqa: E402, F401

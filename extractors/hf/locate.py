"""Where a model's files are, without the network: the folder a spec names
(`model_path=DIR`), the model folder trees researchers keep under `$MFS_MODELS`
(`MERT/MERT-v1-330M/`, `CLAP/larger_clap_music/`, …), or the Hugging Face cache by hub id
(`HF_HOME`/`HF_HUB_CACHE`), in that order: a folder the user names wins over one found.

No torch here: `mfs extractors` says where each model is, and planning a run checks it,
without loading anything. A model that is not found, or a folder that holds another kind of
model, is one `ExtractorUnavailable` line naming every place looked and how to fix it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from mfs.extractors.base import ExtractorUnavailable

MODELS_ENV = "MFS_MODELS"

# Weight files in order of preference: safetensors (sharded or not), then PyTorch pickles,
# including the `.pth`/`.pt` names model folders are often renamed to. The first pattern
# that matches wins, with all its shards.
WEIGHT_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "*.safetensors",
                   "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.pth",
                   "*.pth", "*.pt", "*.bin")
# Files in model folders that hold no model weights.
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "optimizer.bin", "scheduler.pt",
               "rng_state*.pth", "scaler.pt")
# Files besides the weights whose bytes shape the outputs (hashed into every row).
DEFINING_FILES = ("config.json", "preprocessor_config.json")


@dataclass(frozen=True)
class ModelSource:
    """Which model an extractor runs: its hub id, the folders it is kept in under
    `$MFS_MODELS` (relative paths, tried in order), and the `model_type` values of
    config.json that hold it (MERT's own `mert_model` besides HuBERT's `hubert`)."""

    hub_id: str
    folders: tuple[str, ...]
    model_types: tuple[str, ...]

    @property
    def short_name(self) -> str:
        return self.hub_id.rpartition("/")[2]


@dataclass(frozen=True)
class FoundModel:
    """A model folder that was found and checked: its config.json, the weight files to
    load, and where it was found (`model_path`, `$MFS_MODELS`, `Hugging Face cache`)."""

    directory: Path
    where: str
    config: dict
    weights: tuple[Path, ...]

    @property
    def files(self) -> list[Path]:
        """The files whose bytes define the outputs: weights, config, preprocessing."""
        extra = [self.directory / name for name in DEFINING_FILES]
        return [*self.weights, *(path for path in extra if path.is_file())]


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment names it now (`HF_HUB_CACHE`, else
    `HF_HOME/hub`, else `~/.cache/huggingface/hub`). Read at each call: huggingface_hub's
    own constant is fixed when it is first imported."""
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache"),
                                             "huggingface")
    return Path(home).expanduser() / "hub"


def hf_cache_snapshot(hub_id: str) -> Path | None:
    """The cached snapshot folder of `hub_id` (the revision `main` points to), or None."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(hub_id, "config.json", cache_dir=hf_cache_dir())
    return Path(config).parent if isinstance(config, str) else None


def candidate_folders(source: ModelSource, model_path: str | None) -> list[tuple[str, Path]]:
    """(where, folder) of every place the model may be, in the order they are tried."""
    if model_path is not None:
        return [("model_path", Path(model_path).expanduser())]
    places = []
    root = os.environ.get(MODELS_ENV)
    if root:
        for folder in (*source.folders, source.short_name):
            places.append((f"${MODELS_ENV}", Path(root).expanduser() / folder))
    snapshot = hf_cache_snapshot(source.hub_id)
    cached = hf_cache_dir() / ("models--" + source.hub_id.replace("/", "--"))
    places.append(("Hugging Face cache", snapshot or cached))
    return places


def weight_files(directory: Path) -> tuple[Path, ...]:
    """The weight files of a model folder (see `WEIGHT_PATTERNS`); empty when none."""
    names = sorted(p.name for p in directory.iterdir() if p.is_file()
                   and not any(fnmatch(p.name, skip) for skip in NOT_WEIGHTS))
    for pattern in WEIGHT_PATTERNS:
        matches = [name for name in names if fnmatch(name, pattern)]
        if matches:
            return tuple(directory / name for name in matches)
    return ()


def read_model_config(directory: Path) -> dict:
    """config.json of a model folder; ExtractorUnavailable when it is not readable JSON."""
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ExtractorUnavailable(f"{path}: not a readable config.json ({error})") from None
    if not isinstance(config, dict):
        raise ExtractorUnavailable(f"{path}: not a model config (a JSON object)")
    return config


def check_folder(source: ModelSource, where: str, directory: Path) -> FoundModel:
    """A folder that holds config.json, checked to be `source`'s kind of model and to have
    weights; ExtractorUnavailable says what was found instead."""
    config = read_model_config(directory)
    found_type = config.get("model_type")
    if found_type not in source.model_types:
        raise ExtractorUnavailable(
            f"{directory} ({where}) holds a {found_type or 'untyped'!r} model "
            f"(config.json model_type), expected {' or '.join(map(repr, source.model_types))} "
            f"for {source.hub_id}")
    weights = weight_files(directory)
    if not weights:
        raise ExtractorUnavailable(
            f"{directory} ({where}) has config.json but no weight files "
            f"(model.safetensors, pytorch_model.bin or a .pth/.pt file)")
    return FoundModel(directory, where, config, weights)


def find_model(source: ModelSource, model_path: str | None = None) -> FoundModel:
    """The first place that holds `source`'s model; ExtractorUnavailable in one line naming
    every place looked and the ways to provide the model otherwise."""
    places = candidate_folders(source, model_path)
    for where, directory in places:
        if (directory / "config.json").is_file():
            return check_folder(source, where, directory)
    looked = "; ".join(f"{where}: {directory}" for where, directory in places)
    if model_path is not None:
        raise ExtractorUnavailable(f"model_path={model_path}: no config.json there "
                                   f"(expected a {source.hub_id} model folder)")
    raise ExtractorUnavailable(
        f"model {source.hub_id} not found offline (looked in {looked}); download it on a "
        f"machine with network (`hf download {source.hub_id}`) and copy the "
        f"cache, set {MODELS_ENV}=/path/to/AI_models holding {source.folders[0]}/, or give "
        f"model_path=DIR in the extractor spec")

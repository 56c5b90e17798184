"""Published single-file checkpoints (PANNs' `Cnn14_mAP=0.431.pth`, torchvggish's
`vggish-10086976.pth`, …) found offline and read safely.

A file is looked for, in order: the path a spec names (`weights=PATH`); the model trees
researchers keep under `$MFS_MODELS` (`PANNs/cnn14/`, `VGGish/`; the variable is
`locate.MODELS_ENV`, shared with the Hugging Face families); where the reference package
downloads it (`~/panns_data/`); torch hub's checkpoint cache (`$TORCH_HOME/hub/checkpoints/`,
where `torch.hub.load_state_dict_from_url` puts torchvggish's files). A file found nowhere,
a file torch cannot read, or one whose tensors are not the model's, is one
`ExtractorUnavailable` line naming the file and what to do.

Finding needs no torch (planning a run, `mfs extractors`); reading imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.hf.locate import MODELS_ENV


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint cache as the environment names it now (`$TORCH_HOME`, else
    `$XDG_CACHE_HOME/torch`, else `~/.cache/torch`), as `torch.hub.get_dir` resolves it."""
    home = os.environ.get("TORCH_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def checkpoint_places(filename: str, models_folders: tuple[str, ...],
                      package_dirs: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, Path]]:
    """(where, path) of every place `filename` may be, in the order they are tried:
    `$MFS_MODELS/<folder>/` for each of `models_folders`, each (package, folder) of
    `package_dirs`, then torch hub's cache."""
    places = []
    if root := os.environ.get(MODELS_ENV):
        places += [(f"${MODELS_ENV}", Path(root).expanduser() / folder / filename)
                   for folder in models_folders]
    places += [(package, Path(folder).expanduser() / filename) for package, folder in package_dirs]
    places.append(("torch hub cache", torch_hub_checkpoints() / filename))
    return places


def find_checkpoint(filename: str, models_folders: tuple[str, ...],
                    package_dirs: tuple[tuple[str, str], ...] = (),
                    weights: str | None = None) -> tuple[str, Path]:
    """(where, path) of the first place that holds `filename`, or of `weights` when a spec
    names it; ExtractorUnavailable in one line naming every place looked."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ExtractorUnavailable(f"weights={weights}: no such file (expected {filename})")
        return "weights", path
    places = checkpoint_places(filename, models_folders, package_dirs)
    for where, path in places:
        if path.is_file():
            return where, path
    looked = "; ".join(f"{where}: {path.parent}" for where, path in places)
    raise ExtractorUnavailable(
        f"{filename} not found (looked in {looked}); put it in "
        f"${MODELS_ENV}/{models_folders[0]}/ or give weights=PATH in the extractor spec")


def _numpy_globals() -> list:
    """What numpy arrays and scalars in a checkpoint unpickle through, under both numpy
    2's module names and numpy 1's (which files saved before 2024 name)."""
    import numpy as np
    from numpy._core import multiarray

    globals_: list = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
                      (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                      (multiarray.scalar, "numpy.core.multiarray.scalar")]
    globals_ += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]
    return globals_


def read_checkpoint(path: Path) -> Any:
    """The object saved in `path` by `torch.save`, read with `weights_only` (tensors,
    numpy arrays, plain containers; no code runs); ExtractorUnavailable in one line when
    torch cannot read it."""
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same one line
        lines = str(error).strip().splitlines() or [""]
        why = next((line for line in lines if "Unpickler error" in line), lines[0]).strip()
        raise ExtractorUnavailable(f"{path}: not a readable torch checkpoint "
                                   f"({type(error).__name__}: {why[:200]})") from None


def _listed(names: list[str], limit: int = 3) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_tensors(path: Path, what: str, found: Mapping[str, Any],
                  expected: Mapping[str, tuple[int, ...]],
                  optional: tuple[str, ...] = ("num_batches_tracked",)) -> None:
    """ExtractorUnavailable in one line saying how `found` (name -> tensor) differs from
    `expected` (name -> shape): missing names, unexpected names, wrong shapes. Names ending
    in one of `optional` may be absent."""
    def shape(value: Any) -> tuple[int, ...] | None:
        return tuple(value.shape) if hasattr(value, "shape") else None

    missing = [k for k in expected if k not in found and not k.endswith(optional)]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {shape(found[k])} (expected {expected[k]})" for k in expected
             if k in found and shape(found[k]) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_listed(wrong)}")
    if problems:
        raise ExtractorUnavailable(f"{path}: not a {what} checkpoint: {'; '.join(problems)}")

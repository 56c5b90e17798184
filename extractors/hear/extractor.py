"""`hear:<module>`: any module that implements the HEAR 2021 API as an extractor.

The module (imported by name from `sys.path`: the user's environment or `$PYTHONPATH`)
has `load_model(model_file_path)`, `get_scene_embeddings(audio, model)` and
`get_timestamp_embeddings(audio, model)`; its model has `sample_rate`,
`scene_embedding_size` and `timestamp_embedding_size`, which give this extractor's rate
and output sizes, so the model is loaded (on the CPU) the first time they are asked for.

Windows: `window_seconds` (30 s) every `window_seconds`, the last aligned to the track's
end; a shorter track is one window of its real samples alone (no padding), so a 30 s
clip is embedded whole. Stored per track (store/SCHEMA.md):
- `scene_mean`, `scene_std`: the scene embedding of each window, over windows;
- `timestamp_mean`: the timestamp embeddings' mean over the track's frames (the mean of
  each window's frame mean: the windows are equally long);
- `timestamp_spread_mean`: their standard deviation over the frames of a window, the
  mean over windows (for a track of one window: over its frames).

The store name is `hear-<module>` (a `:` cannot be in a store name, and would be read
as `extractor:column` by the analysis specs); `hear:<module>` and `hear-<module>` name
the same extractor. The code version is the hash of the module's source file, as for
plug-ins, so editing the module is a new output; the weights file's path is a config
field (hashed) and its bytes are the rows' model hash.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import Extractor, ExtractorConfig, OutputSpec, Windowing
from mfs.store.provenance import source_version

if TYPE_CHECKING:
    import torch

PREFIXES = ("hear:", "hear-")
API = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
MODEL_ATTRIBUTES = ("sample_rate", "scene_embedding_size", "timestamp_embedding_size")
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class HearConfig(ExtractorConfig):
    """`weights`: the file handed to `load_model` (None: the module's default model),
    made absolute so the hash names one file; `window_seconds`: see the module doc."""

    weights: str | None = None
    window_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds={self.window_seconds} must be positive")
        if self.weights is not None:
            object.__setattr__(self, "weights", str(Path(self.weights).expanduser().absolute()))


class HearExtractor(Extractor):
    """The base of every `hear:<module>` class (`hear_class` makes one per module)."""

    module_name: ClassVar[str]
    config_class = HearConfig
    config: HearConfig
    uses_lengths = True

    @classmethod
    def code_version(cls) -> str:
        """The module's source file hash, found without importing the module."""
        return source_version(Path(module_file(cls.module_name)))

    # --- what the pipeline needs to know ------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.model().sample_rate)

    @property
    def windowing(self) -> Windowing:
        return Windowing(self.config.window_seconds, self.config.window_seconds)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        model = self.model()
        return (OutputSpec("scene", int(model.scene_embedding_size), ("mean", "std")),
                OutputSpec("timestamp", int(model.timestamp_embedding_size), ("mean",)),
                OutputSpec("timestamp_spread", int(model.timestamp_embedding_size), ("mean",)))

    def model_files(self) -> list[Path]:
        return [Path(self.config.weights)] if self.config.weights else []

    def unavailable_reason(self) -> str | None:
        try:
            self.module()
        except (ImportError, AttributeError) as error:
            return str(error)
        if self.config.weights and not Path(self.config.weights).is_file():
            return f"weights file {self.config.weights} does not exist"
        return None

    @property
    def precision(self) -> str:
        return "float32"  # the module runs as it was written; mfs casts nothing

    # --- running ------------------------------------------------------------------------
    def module(self) -> ModuleType:
        """The HEAR module, imported; ImportError/AttributeError say what is wrong."""
        try:
            module = importlib.import_module(self.module_name)
        except ImportError as error:
            raise ImportError(f"HEAR module {self.module_name!r} cannot be imported "
                              f"({error}); put it on PYTHONPATH or install it") from None
        missing = [name for name in API if not callable(getattr(module, name, None))]
        if missing:
            raise AttributeError(f"HEAR module {self.module_name!r} ({module.__file__}) lacks "
                                 f"the HEAR API function(s) {', '.join(missing)}")
        return module

    def model(self) -> object:
        """The module's model, loaded once (on the CPU until `load` moves it)."""
        if getattr(self, "_model", None) is None:
            module = self.module()
            model = (module.load_model(self.config.weights) if self.config.weights
                     else module.load_model())
            missing = [name for name in MODEL_ATTRIBUTES if not hasattr(model, name)]
            if missing:
                raise AttributeError(f"HEAR module {self.module_name!r}: its model lacks "
                                     f"{', '.join(missing)}")
            self._model = model
        return self._model

    def load(self, device: torch.device) -> None:
        super().load(device)
        model = self.model()
        if hasattr(model, "to"):
            self._model = model.to(device)
        if hasattr(self._model, "eval"):
            self._model.eval()

    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Full windows in one call; a window cut short (a short track) alone, on its real
        samples only."""
        import torch

        full = windows.shape[1]
        lengths = lengths if lengths is not None else torch.full((len(windows),), full)
        parts: dict[int, dict[str, torch.Tensor]] = {}
        whole = [i for i, n in enumerate(lengths.tolist()) if n >= full]
        if whole:
            outputs = self._embed_equal(windows[whole])
            for row, i in enumerate(whole):
                parts[i] = {name: value[row] for name, value in outputs.items()}
        for i, n in enumerate(lengths.tolist()):
            if n < full:
                outputs = self._embed_equal(windows[i:i + 1, :max(int(n), 1)])
                parts[i] = {name: value[0] for name, value in outputs.items()}
        return {name: torch.stack([parts[i][name] for i in range(len(windows))])
                for name in ("scene", "timestamp", "timestamp_spread")}

    def _embed_equal(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        module, model = self.module(), self.model()
        scene = module.get_scene_embeddings(audio, model)
        frames, _timestamps = module.get_timestamp_embeddings(audio, model)
        expected = {"scene": (len(audio), int(model.scene_embedding_size)),
                    "timestamp": (len(audio), int(model.timestamp_embedding_size))}
        for what, value, shape in (("scene", scene, expected["scene"]),
                                   ("timestamp", frames[:, 0], expected["timestamp"])):
            if tuple(value.shape) != shape:
                raise ValueError(f"HEAR module {self.module_name!r}: {what} embeddings of "
                                 f"shape {tuple(value.shape)}, expected {shape}")
        frames = frames.float()
        return {"scene": scene.float(), "timestamp": frames.mean(dim=1),
                "timestamp_spread": frames.std(dim=1, unbiased=False)}


def module_file(module_name: str) -> str:
    """The module's source file, found without running it; ImportError if there is none."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise ImportError(f"HEAR module {module_name!r} cannot be found; put it on "
                          "PYTHONPATH or install it")
    return spec.origin


def hear_module(name: str) -> str | None:
    """The module of a `hear:<module>` or `hear-<module>` extractor name, else None."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


@cache
def hear_class(module_name: str) -> type[HearExtractor]:
    """The extractor class of one HEAR module (one class per module, made once)."""
    if not MODULE_NAME.fullmatch(module_name):
        raise KeyError(f"hear:{module_name}: {module_name!r} is not a Python module name")
    class_name = "Hear_" + module_name.replace(".", "_")
    return type(class_name, (HearExtractor,), {
        "name": f"hear-{module_name}", "module_name": module_name,
        "__doc__": f"The HEAR API module {module_name} as an extractor.",
        "__module__": __name__})

"""The musicnn extractors as the pipeline and the CLI see them: which published checkpoint,
its tags, 3 s windows, where the weights are and whether they are installed. The network
(`network.py`, torch) is imported by `Musicnn.load`, so that naming, hashing and planning
musicnn cost no torch import (issue 14: `mfs extract` with nothing to do in under 2 s).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import (
    ExtractorUnavailable,
    NeuralConfig,
    NeuralExtractor,
    OutputSpec,
    Windowing,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

SAMPLE_RATE = 16000
HOP = 256
PATCH_FRAMES = 187  # musicnn's 3 s input: time_to_frames(3 s) + 1
INSTALL_HINT = "run `.venv/bin/pip install --no-deps musicnn==0.1.0`"

MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
)
TAGS = {"MTT_musicnn": MTT_TAGS, "MSD_musicnn": MSD_TAGS}



# --- the extractor ------------------------------------------------------------------------
@dataclass(frozen=True)
class MusicnnConfig(NeuralConfig):
    """Which published musicnn checkpoint to run, the hop between 3 s windows, and the
    precision (`NeuralConfig`).

    `model` has no default: each extractor class names its checkpoint once, in its
    `checkpoint`, and its `default_config` fills it in. `hop_seconds=None` keeps musicnn's
    own non-overlapping patches; a smaller hop gives overlapping windows (a different
    output, stored beside the default one). `precision` stays `float32` by default, not
    `auto`: the tests hold musicnn to its published reference tags (tests/test_musicnn.py),
    which bfloat16 moves by ~1e-2, and the stored default outputs keep their hashes; taking
    bfloat16's speed for that is the user's choice (`musicnn-mtt:precision=auto`).
    """

    model: str
    hop_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in TAGS:
            raise ValueError(f"musicnn model {self.model!r} unknown; choose one of {list(TAGS)}")
        if self.hop_seconds is not None and self.hop_seconds <= 0:
            raise ValueError(f"musicnn hop_seconds={self.hop_seconds} must be positive")


def _checkpoint_dir(model: str) -> Path | None:
    """Where the musicnn wheel keeps `model`'s checkpoint, found without importing musicnn
    (its package imports TensorFlow)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / model


class Musicnn(NeuralExtractor):
    """musicnn tags and penultimate embedding per 3 s window (musicnn's own patch length).

    Windows are 187 frames × 256 samples = 2.992 s with no overlap, so they line up with
    the patches musicnn's `extractor` cuts; only the pipeline's last, end-aligned window
    is extra.
    """

    config_class = MusicnnConfig
    # 2: a track shorter than one 3 s window is embedded from its real audio only (version 1
    # embedded it zero-padded to 3 s); bump whenever the outputs change (Extractor.version).
    version = 2
    uses_lengths = True  # a track shorter than 3 s is embedded without its padding
    checkpoint: ClassVar[str]  # the published checkpoint this class runs, a key of TAGS
    config: MusicnnConfig

    @classmethod
    def default_config(cls) -> MusicnnConfig:
        return MusicnnConfig(model=cls.checkpoint)

    def __init__(self, config: MusicnnConfig | None = None) -> None:
        super().__init__(config)
        if self.config.model != self.checkpoint:
            raise ValueError(f"{self.name} runs {self.checkpoint}, not {self.config.model}")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        seconds = PATCH_FRAMES * HOP / SAMPLE_RATE
        return Windowing(seconds=seconds, hop_seconds=self.config.hop_seconds or seconds)

    @property
    def tags(self) -> tuple[str, ...]:
        return TAGS[self.config.model]

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (
            OutputSpec("penultimate", 200, pooling=("mean", "max")),
            OutputSpec("tags", len(self.tags), pooling=("mean",), feature_names=self.tags),
        )

    def _files(self) -> list[Path]:
        directory = _checkpoint_dir(self.config.model)
        return [] if directory is None else [directory / ".index",
                                             directory / ".data-00000-of-00001"]

    def model_files(self) -> list[Path]:
        return [f for f in self._files() if f.is_file()]

    def unavailable_reason(self) -> str | None:
        files = self._files()
        if not files:
            return f"musicnn weights are not installed; {INSTALL_HINT}"
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            return f"musicnn checkpoint file {missing[0]} is missing; {INSTALL_HINT}"
        return None

    def build(self) -> nn.Module:
        reason = self.unavailable_reason()
        if reason is not None:
            raise ExtractorUnavailable(reason)
        from mfs.extractors.musicnn.network import Musicnn, load_network

        return Musicnn(load_network(self._files()[0], len(self.tags)))

    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"{self.name} needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        import torch

        with torch.inference_mode():
            penultimate, logits = self.model(windows, lengths)
        return {"penultimate": penultimate, "tags": torch.sigmoid(logits)}


class MusicnnMTT(Musicnn):
    """musicnn trained on MagnaTagATune (50 instrument / genre / mood tags)."""

    name = "musicnn-mtt"
    checkpoint = "MTT_musicnn"


class MusicnnMSD(Musicnn):
    """musicnn trained on the Million Song Dataset's 50 most frequent last.fm tags."""

    name = "musicnn-msd"
    checkpoint = "MSD_musicnn"

"""VGGish as the pipeline and the CLI see it: 16 kHz, one 0.96 s example per window, the
raw 128-d embedding and the released (PCA'd, quantised) one, where the weights are.
The network (`network.py`, torch) is imported in `build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mfs.extractors.base import (
    ExtractorUnavailable,
    NeuralConfig,
    NeuralExtractor,
    OutputSpec,
    Windowing,
)
from mfs.extractors.checkpoint_files import find_checkpoint

if TYPE_CHECKING:
    import torch
    from torch import nn

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms
FRAME_HOP = 160  # 10 ms
EXAMPLE_FRAMES = 96  # 0.96 s
# One example: 96 frames of 400 samples every 160, starting every 96 · 160 samples.
EXAMPLE_SAMPLES = (EXAMPLE_FRAMES - 1) * FRAME_HOP + FRAME_LENGTH  # 15 600
EXAMPLE_HOP = EXAMPLE_FRAMES * FRAME_HOP  # 15 360
WEIGHTS_FILE = "vggish-10086976.pth"
PCA_FILE = "vggish_pca_params-970ea276.pth"
MODELS_FOLDERS = ("VGGish", "vggish")


@dataclass(frozen=True)
class VGGishConfig(NeuralConfig):
    """Whether the released embedding (PCA) is stored beside the raw one, and the files
    when a spec names them (each enters the config hash only when set).

    `pca=true` (the default) needs the PCA file; without it, `pca=false` stores the raw
    embedding only. An explicit choice, not the file's presence, decides the columns, so
    one config hash always has the same columns.
    """

    pca: bool = True
    # bfloat16 where native (`HFConfig`'s reasoning; the log-mel stays float32).
    precision: str = field(default="auto", kw_only=True)
    weights: str | None = field(default=None, kw_only=True)
    pca_params: str | None = field(default=None, kw_only=True)

    def to_dict(self) -> dict:
        config = super().to_dict()
        for key in ("weights", "pca_params"):
            if config[key] is None:
                del config[key]
        return config


class VGGish(NeuralExtractor):
    """VGGish embeddings per 0.96 s example, mean and std over a track's examples.

    A window is one example (15 600 samples, every 15 360), so windows are the examples
    `waveform_to_examples` cuts from the whole track, frame for frame. The pipeline adds
    one end-aligned example when the hops leave a tail (the recipe drops it): one extra
    example in a 30 s track's 32. One example per window costs nothing in batching: the
    pipeline batches windows of many tracks. A track shorter than 0.96 s is one example
    zero-padded to 0.96 s: VGGish's dense layers take exactly 96 frames, and the recipe
    itself gives such a track no example at all.
    """

    name = "vggish"
    config_class = VGGishConfig
    version = 1
    # Its many small convs per example run 1.7x faster per example at 64 than at 16 on a
    # CPU (bench/RESULTS.md, "CNN extractors"): 61 s of audio per call.
    default_batch_size = 64
    config: VGGishConfig

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=EXAMPLE_SAMPLES / SAMPLE_RATE,
                         hop_seconds=EXAMPLE_HOP / SAMPLE_RATE)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        raw = OutputSpec("raw", 128, pooling=("mean", "std"))
        if not self.config.pca:
            return (raw,)
        return (OutputSpec("embedding", 128, pooling=("mean", "std")), raw)

    @cached_property
    def found(self) -> dict[str, tuple[str, Path]]:
        """(where, path) of the weights and, with `pca`, of the PCA parameters."""
        files = {"weights": find_checkpoint(WEIGHTS_FILE, MODELS_FOLDERS,
                                            weights=self.config.weights)}
        if self.config.pca:
            try:
                files["pca"] = find_checkpoint(PCA_FILE, MODELS_FOLDERS,
                                               weights=self.config.pca_params)
            except ExtractorUnavailable as error:
                raise ExtractorUnavailable(f"{error}; or pca=false to store the raw "
                                           "embedding only") from None
        return files

    def model_files(self) -> list[Path]:
        try:
            return [path for _, path in self.found.values()]
        except ExtractorUnavailable:
            return []

    def unavailable_reason(self) -> str | None:
        try:
            self.found  # noqa: B018 - finding them is the check
        except ExtractorUnavailable as error:
            return str(error)
        return None

    def model_location(self) -> str | None:
        try:
            return "; ".join(f"{where}: {path}" for where, path in self.found.values())
        except ExtractorUnavailable:
            return None

    def build(self) -> nn.Module:
        from mfs.extractors.vggish.network import load_vggish

        found = self.found
        return load_vggish(found["weights"][1], found["pca"][1] if "pca" in found else None)

    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"{self.name} needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        raw, released = self.model(windows)
        return {"raw": raw} if released is None else {"embedding": released, "raw": raw}

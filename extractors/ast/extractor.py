"""The Audio Spectrogram Transformer fine-tuned on AudioSet (`ast`), as the pipeline and
the CLI see it: 16 kHz, consecutive 10.24 s windows over the whole track (its feature
extractor alone keeps only the first 10.24 s), three outputs per window.

Light like every `extractor.py`: the network (`network.py`, torch and transformers) is
imported in `build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import ExtractorUnavailable, OutputSpec, Windowing
from mfs.extractors.hf.extractor import FixedInputConfig, HFExtractor
from mfs.extractors.hf.locate import ModelSource

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16000
# The model's 1024 frames: 10.24 s gives 1 + (163840 - 400) // 160 = 1022 frames, padded
# with 2 as ASTFeatureExtractor pads them (AudioSet's 10 s clips were padded with 26).
WINDOW_SECONDS = 10.24
# The published checkpoint's sizes, shown by `mfs extractors` before the model is found;
# a found model's config.json is what counts.
HIDDEN, LABELS = 768, 527


@dataclass(frozen=True)
class AstConfig(FixedInputConfig):
    window_seconds: ClassVar[float] = WINDOW_SECONDS


class Ast(HFExtractor):
    """Per 10.24 s window: `pooled` (the mean of the CLS and distillation tokens that the
    classifier reads), `patches` (mean of the patch tokens), `logits` (the 527 AudioSet
    classes, named as config.json's `id2label`); mean and std over windows (logits: mean
    and max, a class heard in one window counts)."""

    name = "ast"
    config_class = AstConfig
    config: AstConfig
    source = ModelSource("MIT/ast-finetuned-audioset-10-10-0.4593",
                         ("AST/ast-finetuned-audioset",),
                         ("audio-spectrogram-transformer",))

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        return self.config.windowing()

    def _model_config(self) -> dict:
        try:
            return self.found.config
        except ExtractorUnavailable:
            return {}

    @property
    def labels(self) -> tuple[str, ...] | None:
        """AudioSet class names in logit order, from config.json (None before it is found)."""
        id2label = self._model_config().get("id2label")
        if not id2label:
            return None
        return tuple(id2label[str(i)] for i in range(len(id2label)))

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        hidden = self._model_config().get("hidden_size", HIDDEN)
        labels = self.labels
        return (OutputSpec("pooled", hidden), OutputSpec("patches", hidden),
                OutputSpec("logits", len(labels) if labels else LABELS,
                           pooling=("mean", "max"), feature_names=labels))

    def build(self) -> torch.nn.Module:
        from mfs.extractors.ast.network import AstNetwork

        return AstNetwork(self.found)

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(windows)

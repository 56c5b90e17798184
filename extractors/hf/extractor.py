"""The base of every extractor that runs a model in Hugging Face's layout: where its files
are (`locate`), the config fields they share, and `embed` on real audio only.

Light on purpose, like every `extractor.py`: naming, hashing and planning these extractors
imports neither torch nor transformers (`loading` and the family's network code are
imported in `build`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import (
    ExtractorUnavailable,
    NeuralConfig,
    NeuralExtractor,
    Windowing,
    check_windows,
)
from mfs.extractors.hf.locate import FoundModel, ModelSource, find_model
from mfs.extractors.short_windows import embed_real_samples

if TYPE_CHECKING:
    from pathlib import Path

    import torch


@dataclass(frozen=True)
class HFConfig(NeuralConfig):
    """Fields every Hugging Face model extractor has, keyword-only, and its precision.

    `precision` defaults to `auto`: bfloat16 where the hardware computes it natively (about
    twice float32's matrix-product rate on an AVX-512 BF16 CPU, more on CUDA), where these
    models' embeddings keep a cosine of 0.99 or more to float32's (tested per family);
    float32 elsewhere. Each row records the precision it ran in; `precision=float32`
    gives the same numbers on every machine.

    `model_path` names the model folder (else `$MFS_MODELS` and the Hugging Face cache are
    searched, `locate`). It enters the config hash when set, since a folder the user names
    may hold other weights (a fine-tuned copy); left unset, the same hub model found in the
    cache or under `$MFS_MODELS` is one output, whose weights' hash each row records.
    """

    precision: str = field(default="auto", kw_only=True)
    model_path: str | None = field(default=None, kw_only=True)

    def to_dict(self) -> dict:
        config = super().to_dict()
        if config["model_path"] is None:
            del config["model_path"]
        return config


@dataclass(frozen=True)
class FixedInputConfig(HFConfig):
    """The config of a model whose input has one length, `window_seconds` (AST's 10.24 s,
    CLAP's 10 s): windows of that length; `hop_seconds=None` makes them consecutive (the
    last one aligned to the track's end), a smaller hop overlaps them (another output)."""

    window_seconds: ClassVar[float]
    hop_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_windows(self.window_seconds, self.hop_seconds)

    def windowing(self) -> Windowing:
        return Windowing(seconds=self.window_seconds,
                         hop_seconds=self.hop_seconds or self.window_seconds)


class HFExtractor(NeuralExtractor):
    """An extractor whose model is found by `source` and loaded into a transformers class.

    Subclasses implement `forward`: windows that are all real audio, of one length, to
    outputs. `embed` calls it once on the batch's full windows and once per window cut
    short (a track shorter than one window) on its real samples alone
    (`short_windows.embed_real_samples`), so a short track's
    embedding is the model's on that audio, with no silence, whatever the model's
    normalisation (group norm over time, as in MERT-95M, is changed by padding that an
    attention mask does not hide).
    """

    source: ClassVar[ModelSource]
    config: HFConfig
    uses_lengths = True
    version = 1

    @cached_property
    def found(self) -> FoundModel:
        """The model folder, found once per instance; ExtractorUnavailable if it is not."""
        return find_model(self.source, self.config.model_path)

    def model_files(self) -> list[Path]:
        """The found model's files; none while it is not found (`unavailable_reason` says
        why), as `Extractor.model_files` lists only files that exist."""
        try:
            return self.found.files
        except ExtractorUnavailable:
            return []

    def unavailable_reason(self) -> str | None:
        try:
            self.found  # noqa: B018 - finding it is the check
        except ExtractorUnavailable as error:
            return str(error)
        return None

    def model_location(self) -> str | None:
        try:
            return f"{self.found.where}: {self.found.directory}"
        except ExtractorUnavailable:
            return None

    def load(self, device: torch.device) -> None:
        """As every neural extractor loads, then, for bfloat16 on a CPU, the linear layers'
        bfloat16 weights made now (`bfloat_linear.prepare`): part of loading the model,
        not of its first batch."""
        super().load(device)
        if self.precision == "bfloat16" and device.type == "cpu":
            from mfs.extractors.hf import bfloat_linear

            bfloat_linear.prepare(self.model)

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs of windows (batch, samples) that are all real audio, one per OutputSpec."""
        raise NotImplementedError

    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if sample_rate != self.sample_rate:
            raise ValueError(f"{self.name} needs {self.sample_rate} Hz audio, "
                             f"got {sample_rate} Hz")
        return embed_real_samples(self.forward, windows, lengths)

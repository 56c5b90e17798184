"""PANNs CNN14 as the pipeline and the CLI see it: which published checkpoint (32 kHz or
16 kHz), its front end, 10.25 s windows, where the weights and AudioSet's class names are.
The network (`network.py`, torch) is imported in `build`.
"""

from __future__ import annotations

import csv
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

N_CLASSES = 527  # AudioSet's classes, in class_labels_indices.csv's order
LABELS_FILE = "class_labels_indices.csv"
# Where the weights are kept: researchers' trees under $MFS_MODELS, then panns_inference's.
MODELS_FOLDERS = ("PANNs/cnn14", "PANNs")
PACKAGE_DIRS = (("panns_inference", "~/panns_data"),)


@dataclass(frozen=True)
class FrontEnd:
    """The log-mel recipe a checkpoint was trained on."""

    sample_rate: int
    n_fft: int
    hop: int
    mel_bins: int
    fmin: float
    fmax: float
    checkpoint: str


FRONT_ENDS = {
    32000: FrontEnd(32000, 1024, 320, 64, 50.0, 14000.0, "Cnn14_mAP=0.431.pth"),
    16000: FrontEnd(16000, 512, 160, 64, 50.0, 8000.0, "Cnn14_16k_mAP=0.438.pth"),
}


@dataclass(frozen=True)
class Cnn14Config(NeuralConfig):
    """Which checkpoint (by its input rate), the windows (10.25 s every 10.25 s by
    default; see `PannsCnn14`), and the weights file when a spec names one.

    `weights` enters the config hash only when set (a file the user names may hold other
    weights); found in the usual places, the published file is one output whose bytes'
    hash every row records.
    """

    sample_rate: int = 32000
    window_seconds: float = 10.25
    hop_seconds: float | None = None
    weights: str | None = field(default=None, kw_only=True)
    # bfloat16 where native (`HFConfig`'s reasoning; the log-mel stays float32).
    precision: str = field(default="auto", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sample_rate not in FRONT_ENDS:
            raise ValueError(f"panns-cnn14 sample_rate={self.sample_rate} unknown; choose "
                             f"{' or '.join(map(str, FRONT_ENDS))} (the published checkpoints)")
        if self.window_seconds <= 0:
            raise ValueError(f"panns-cnn14 window_seconds={self.window_seconds} must be "
                             "positive")
        if self.hop_seconds is not None and self.hop_seconds <= 0:
            raise ValueError(f"panns-cnn14 hop_seconds={self.hop_seconds} must be positive")

    def to_dict(self) -> dict:
        config = super().to_dict()
        if config["weights"] is None:
            del config["weights"]
        return config


def read_labels(path: Path) -> tuple[str, ...]:
    """AudioSet's class names from its `class_labels_indices.csv` (index, mid, name)."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.reader(file))[1:]
    except (OSError, csv.Error) as error:
        raise ExtractorUnavailable(f"{path}: not readable ({error})") from None
    if len(rows) != N_CLASSES or any(len(row) < 3 for row in rows):
        raise ExtractorUnavailable(f"{path}: expected {N_CLASSES} classes as "
                                   f"index,mid,display_name rows, found {len(rows)} rows")
    return tuple(row[2] for row in rows)


class PannsCnn14(NeuralExtractor):
    """CNN14's 2048-d embedding and its 527 AudioSet clip-wise probabilities per window.

    **Windows: 10.25 s every 10.25 s** (version 2; version 1 had 10 s). CNN14 was trained
    on 10 s clips, but it is convolutional and pools over time, so a quarter second more
    changes little of what it sees, and it fits a 30 s clip in three windows: GTZAN's
    30.0-30.12 s clips (a few up to ~30.6 s) and FMA's 29.98 s ones. With 10 s windows a
    30.013 s GTZAN clip ran as four, the pipeline's end-aligned one for the last 0.01 s
    overlapping the third by 9.99 s: a third more compute (40 s for 30 s of audio, against
    30.75 s now), and its last 10 s weighed twice in the means (0.74 s now). The same
    choice as the HuBERT family's (`HubertFamilyConfig`); `window_seconds=10` gives the
    trained length back. A track shorter than one window runs on its real samples alone
    (`short_windows.embed_real_samples`): CNN14 pools over time, so padding would change
    its embedding.
    """

    name = "panns-cnn14"
    config_class = Cnn14Config
    version = 2  # 1: 10 s windows
    uses_lengths = True
    config: Cnn14Config

    @property
    def front(self) -> FrontEnd:
        return FRONT_ENDS[self.config.sample_rate]

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def windowing(self) -> Windowing:
        seconds = self.config.window_seconds
        return Windowing(seconds=seconds, hop_seconds=self.config.hop_seconds or seconds)

    @cached_property
    def found(self) -> tuple[str, Path]:
        """(where, path) of the checkpoint; ExtractorUnavailable when it is nowhere."""
        return find_checkpoint(self.front.checkpoint, MODELS_FOLDERS, PACKAGE_DIRS,
                               self.config.weights)

    @cached_property
    def labels_file(self) -> Path:
        """AudioSet's class names: beside the checkpoint, else where panns_inference keeps
        them (it downloads them on import)."""
        beside = self.found[1].parent / LABELS_FILE
        if beside.is_file():
            return beside
        return Path(find_checkpoint(LABELS_FILE, MODELS_FOLDERS, PACKAGE_DIRS)[1])

    @property
    def labels(self) -> tuple[str, ...] | None:
        try:
            return read_labels(self.labels_file)
        except ExtractorUnavailable:
            return None

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (
            OutputSpec("embedding", 2048, pooling=("mean", "std")),
            OutputSpec("audioset", N_CLASSES, pooling=("mean", "max"),
                       feature_names=self.labels),
        )

    def model_files(self) -> list[Path]:
        try:
            return [self.found[1], self.labels_file]
        except ExtractorUnavailable:
            return []

    def unavailable_reason(self) -> str | None:
        try:
            read_labels(self.labels_file)
        except ExtractorUnavailable as error:
            return str(error)
        return None

    def model_location(self) -> str | None:
        try:
            return f"{self.found[0]}: {self.found[1]}"
        except ExtractorUnavailable:
            return None

    def build(self) -> nn.Module:
        from mfs.extractors.panns.network import load_cnn14

        if reason := self.unavailable_reason():
            raise ExtractorUnavailable(reason)
        return load_cnn14(self.found[1], self.config.sample_rate)

    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if sample_rate != self.sample_rate:
            raise ValueError(f"{self.name} needs {self.sample_rate} Hz audio, "
                             f"got {sample_rate} Hz")
        from mfs.extractors.panns.network import MIN_FRAMES
        from mfs.extractors.short_windows import embed_real_samples

        def forward(batch: torch.Tensor) -> dict[str, torch.Tensor]:
            embedding, probabilities = self.model(batch)
            return {"embedding": embedding, "audioset": probabilities}

        return embed_real_samples(forward, windows, lengths,
                                  min_samples=(MIN_FRAMES - 1) * self.front.hop)

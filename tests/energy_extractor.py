"""A small real extractor for pipeline tests: per-window RMS energy and zero-crossing rate.

It computes genuine features from the audio (nothing faked), has no weights, and runs in
milliseconds, so the pipeline and flows can be tested without a large model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mfs.extractors.base import Extractor, ExtractorConfig, OutputSpec, Windowing


@dataclass(frozen=True)
class EnergyConfig(ExtractorConfig):
    window_seconds: float = 1.0
    sample_rate: int = 16000


class EnergyExtractor(Extractor):
    name = "energy"
    config_class = EnergyConfig

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def windowing(self) -> Windowing:
        return Windowing(self.config.window_seconds, self.config.window_seconds)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec("energy", 2, ("mean", "std", "max")),)

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        rms = windows.pow(2).mean(dim=1).sqrt()
        signs = torch.signbit(windows)
        zcr = (signs[:, 1:] != signs[:, :-1]).float().mean(dim=1)
        return {"energy": torch.stack([rms, zcr], dim=1)}

"""The test `energy` extractor slowed to about 0.3 s per model call, so a test can kill a
Dask worker while it is in the middle of a batch (registered through MFS_EXTRACTORS, which
the workers' processes read too)."""

from __future__ import annotations

import time

import torch
from energy_extractor import EnergyExtractor


class SlowEnergyExtractor(EnergyExtractor):
    name = "slow-energy"

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        time.sleep(0.3)
        return super().embed(windows, sample_rate)

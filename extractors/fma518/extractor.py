"""The fma518 extractor as the pipeline and the CLI see it: its config, its 518 named
outputs and how it reads a track. The computation (`features.py`: torch and the C kernels)
is imported by `Fma518Features.load`/`embed`, so that naming, hashing and planning fma518 cost no
torch import (issue 14: `mfs extract` with nothing to do in under 2 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mfs.extractors.base import Extractor, ExtractorConfig, OutputSpec, TrackBlocks, Windowing

if TYPE_CHECKING:
    import torch

    from mfs.extractors.fma518.features import Fma518Features

# features.py's families and sizes, in the order it computes them.
FAMILIES: tuple[tuple[str, int], ...] = (
    ("chroma_stft", 12), ("chroma_cqt", 12), ("chroma_cens", 12), ("tonnetz", 6),
    ("mfcc", 20), ("rmse", 1), ("zcr", 1), ("spectral_centroid", 1),
    ("spectral_bandwidth", 1), ("spectral_contrast", 7), ("spectral_rolloff", 1),
)
STATISTICS: tuple[str, ...] = ("mean", "std", "skew", "kurtosis", "median", "min", "max")
N_FRAME_FEATURES = sum(size for _, size in FAMILIES)
CQT_OCTAVES = 7


def _columns() -> tuple[tuple[str, ...], np.ndarray]:
    """features.csv's sorted "feature/statistic/number" names, and for each its position in
    the flattened (statistic, frame feature) layout of `features.summarise`."""
    names, positions, first = [], [], 0
    for name, size in FAMILIES:
        for s, stat in enumerate(STATISTICS):
            for i in range(size):
                names.append((name, stat, f"{i + 1:02d}"))
                positions.append(s * N_FRAME_FEATURES + first + i)
        first += size
    order = sorted(range(len(names)), key=names.__getitem__)
    return tuple("/".join(names[i]) for i in order), np.asarray(positions)[order]


FEATURE_NAMES, COLUMN_ORDER = _columns()


@dataclass(frozen=True)
class Fma518Config(ExtractorConfig):
    """Frame parameters of features.py. The CQT needs `hop_length` divisible by 2^6."""

    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self) -> None:
        if self.hop_length % 2 ** (CQT_OCTAVES - 1):
            raise ValueError(f"fma518: hop_length={self.hop_length} must be a multiple of "
                             f"{2 ** (CQT_OCTAVES - 1)} for the {CQT_OCTAVES}-octave CQT")


class Fma518(Extractor):
    """FMA features.csv (518 values per track) from the whole track at its native rate."""

    name = "fma518"
    config_class = Fma518Config
    config: Fma518Config
    version = 1  # bump when the features change (Extractor.version)
    # A second torch thread wins ~5% wall time for twice the CPU, and loses 5-10x when the
    # other core is busy: many small ops, each waiting on the other thread (bench/RESULTS.md).
    cpu_threads = 1
    reads_blocks = True  # `embed_track`: long tracks in segments, in bounded memory

    def __init__(self, config: Fma518Config | None = None) -> None:
        super().__init__(config)
        self._features: Fma518Features | None = None

    @property
    def sample_rate(self) -> int | None:
        return None

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=None)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec(name="features", dim=len(FEATURE_NAMES), pooling=(),
                           feature_names=FEATURE_NAMES),)

    def load(self, device: torch.device) -> None:
        super().load(device)
        self.features()

    def features(self) -> Fma518Features:
        """The computation for this config, built on first use (`embed` works unloaded)."""
        if self._features is None:
            from mfs.extractors.fma518.features import Fma518Features

            self._features = Fma518Features(self.config)
        return self._features

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        """Tracks (batch, samples) of equal length -> {"features": (batch, 518)}."""
        return self.features().embed(windows, sample_rate)

    def embed_track(self, blocks: TrackBlocks, sample_rate: int) -> dict[str, torch.Tensor]:
        return self.features().embed_track(blocks, sample_rate, getattr(self, "device", None))

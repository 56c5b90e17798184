"""`opensmile-egemaps` and `opensmile-compare`: openSMILE's eGeMAPSv02 (88) and
ComParE_2016 (6,373) functionals over the whole track, named as openSMILE names them.

Audio is resampled to 16 kHz, the rate both feature sets were designed and published at
(ComParE's spectral bands stop at 8 kHz, its Nyquist frequency there), so one track gives
the same features whatever its file's rate. The track is streamed into openSMILE block by
block (`stream.py`), never held whole; what grows with the track is what openSMILE must
keep for functionals over all of it, its per-frame descriptors: ComParE, ~1.5 GB for an
hour-long track (bench/RESULTS.md, "openSMILE memory").

Light on purpose: `opensmile` (3 s to import) is imported for the feature names and in
`load`, never to name, hash or plan the extractors.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mfs.extractors.base import Extractor, ExtractorConfig, OutputSpec, TrackBlocks, Windowing

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16000


@cache
def feature_names(feature_set: str) -> tuple[str, ...]:
    """openSMILE's names of a feature set's functionals, in its output order."""
    from mfs.extractors.opensmile.stream import smile

    return tuple(smile(feature_set).feature_names)


@dataclass(frozen=True)
class OpenSmileConfig(ExtractorConfig):
    """No settings: the feature set is the extractor's, at 16 kHz."""


class OpenSmileFunctionals(Extractor):
    """Functionals of one openSMILE feature set over the whole track."""

    config_class = OpenSmileConfig
    feature_set: ClassVar[str]  # an `opensmile.FeatureSet` member's name
    dim: ClassVar[int]
    version = 1  # bump when the features change (Extractor.version)
    reads_blocks = True  # `embed_track`: streamed into openSMILE, block by block

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=None)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec(name="functionals", dim=self.dim, pooling=(),
                           feature_names=feature_names(self.feature_set)),)

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("opensmile") is None:
            return "the opensmile package is not installed: pip install opensmile"
        return None

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        import torch

        from mfs.extractors.opensmile.stream import functionals

        rows = [functionals(self.feature_set, lambda w=w: iter([w.cpu().numpy()]), sample_rate)
                for w in windows]
        return {"functionals": torch.from_numpy(np.stack(rows))}

    def embed_track(self, blocks: TrackBlocks, sample_rate: int) -> dict[str, torch.Tensor]:
        import torch

        from mfs.extractors.opensmile.stream import functionals

        return {"functionals": torch.from_numpy(functionals(self.feature_set, blocks,
                                                            sample_rate)[None])}


class OpenSmileEgemaps(OpenSmileFunctionals):
    """eGeMAPSv02: the 88 functionals of the extended Geneva minimalistic acoustic set."""

    name = "opensmile-egemaps"
    feature_set = "eGeMAPSv02"
    dim = 88


class OpenSmileCompare(OpenSmileFunctionals):
    """ComParE_2016: the 6,373 functionals of the Computational Paralinguistics set."""

    name = "opensmile-compare"
    feature_set = "ComParE_2016"
    dim = 6373

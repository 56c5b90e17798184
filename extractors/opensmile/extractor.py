"""`opensmile-egemaps` and `opensmile-compare`: openSMILE's eGeMAPSv02 (88) and
ComParE_2016 (6,373) functionals over the whole track, named as openSMILE names them.

Audio is resampled to 16 kHz, the rate both feature sets were designed and published at
(ComParE's spectral bands stop at 8 kHz, its Nyquist frequency there), so one track gives
the same features whatever its file's rate. The track is streamed into openSMILE block by
block (`stream.py`), never held whole. What grows with the track is what openSMILE keeps
for functionals over all of it, its per-frame descriptors (ComParE ~30 MB per minute), so
`segment_s` bounds it (`mfs.extractors.segments`): a track of at most `segment_s` seconds
(default 600) gets openSMILE's functionals of the whole track, exactly; a longer one is cut
into equal segments of at most `segment_s`, each given to a fresh openSMILE as a track of
its own, and each functional is the duration-weighted mean of its segments' values.
Exact under that rule, up to the frames at segment edges (each segment starts openSMILE's
smoothing, deltas and pitch tracking afresh): the arithmetic means (`amean`) of descriptors
defined on every frame. Approximations, the mean of the segments' statistic instead of the
statistic of the whole: every other functional (standard deviations and other moments,
percentiles and ranges, extremes and their positions, regression slopes, rates and segment
lengths), and means over voiced or non-zero frames only (eGeMAPS's `…nz_amean`, ComParE's
F0 functionals), which weigh each segment by its duration, not by its voiced frames.
`bench/RESULTS.md` ("openSMILE memory") has the peak memory of an hour-long track both ways.

A first pass over the blocks counts the track's samples to place the segments (free for a
clip, which the pipeline holds decoded; one more decode for a long track).

Light on purpose: `opensmile` (3 s to import) is imported for the feature names and in
`load`, never to name, hash or plan the extractors.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mfs.extractors.base import Extractor, OutputSpec, TrackBlocks, Windowing
from mfs.extractors.segments import SegmentedConfig, combine, segment_ends, split_blocks

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16000


@cache
def feature_names(feature_set: str) -> tuple[str, ...]:
    """openSMILE's names of a feature set's functionals, in its output order."""
    from mfs.extractors.opensmile.stream import smile

    return tuple(smile(feature_set).feature_names)


@dataclass(frozen=True)
class OpenSmileConfig(SegmentedConfig):
    """`segment_s`, the longest track whose functionals are computed whole (module
    docstring); the feature set is the extractor's, at 16 kHz."""


class OpenSmileFunctionals(Extractor):
    """Functionals of one openSMILE feature set over the whole track."""

    config_class = OpenSmileConfig
    feature_set: ClassVar[str]  # an `opensmile.FeatureSet` member's name
    dim: ClassVar[int]
    config: OpenSmileConfig
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

        rows = [self.track_functionals(lambda w=w: iter([w.cpu().numpy()]), sample_rate)
                for w in windows]
        return {"functionals": torch.from_numpy(np.stack(rows))}

    def embed_track(self, blocks: TrackBlocks, sample_rate: int) -> dict[str, torch.Tensor]:
        import torch

        return {"functionals": torch.from_numpy(self.track_functionals(blocks,
                                                                       sample_rate)[None])}

    def track_functionals(self, blocks: TrackBlocks, sample_rate: int) -> np.ndarray:
        """The track's functionals: of the whole, or combined from its segments."""
        from mfs.extractors.opensmile.stream import functionals

        n_samples = sum(len(block) for block in blocks())
        ends = [round(end) for end in segment_ends(n_samples,
                                                   self.config.segment_s * sample_rate)]
        if len(ends) == 1:
            return functionals(self.feature_set, blocks, sample_rate)
        pieces = split_blocks(blocks(), ends)
        rows = [functionals(self.feature_set, lambda piece=piece: piece, sample_rate)
                for piece in pieces]
        return combine(np.stack(rows), np.diff([0, *ends]))


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

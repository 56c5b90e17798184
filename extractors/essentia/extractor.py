"""`essentia-music`: Essentia's MusicExtractor (low-level, rhythm and tonal descriptors,
its default statistics) flattened to one fixed vector with a name per dimension.

MusicExtractor is given the file's path and decodes it itself (`Extractor.reads_file`):
it is file-based (its AudioLoader, resampling to 44.1 kHz and replay gain are inside
the algorithm), and feeding it samples would mean rebuilding its ~30 algorithms as a
network on arrays, a second copy of Essentia's recipe that could drift from it. So the
pipeline decodes nothing for this extractor.

MusicExtractor keeps every frame of the slice it analyses and the slice itself (~45 MB per
minute of track: 727 MiB for 15 minutes, bench/RESULTS.md), so `segment_s` bounds it
(`mfs.extractors.segments`, the rule openSMILE's extractors follow): a track of at most
`segment_s` seconds (default 600; length from the file's header) is analysed whole, exactly
as before; a longer one as equal segments of at most `segment_s`, each MusicExtractor's own
slice (`startTime`, `endTime`: it decodes from the file's start and drops what precedes the
slice, so decoding costs grow with the number of segments, memory does not), and each
dimension of the vector is the duration-weighted mean of the segments' values. Close to the
whole's under that rule: the `.mean` of frame-wise descriptors (each segment has its own
replay gain, which scales the level-dependent ones, and its own frame edges).
Approximations, the mean of the segments' value instead of the whole's: every other
statistic (`var`, `stdev`, `median`, `min`, `max`, the `d*` derivatives, covariances),
track-level estimates (`rhythm.bpm` and the rest of rhythm, `average_loudness`, loudness
range, key strength) and string descriptors, whose one-hot columns become the fraction of
the track's duration whose segments found each value (`tonal.key_edma.key=F#` 0.7, `=C#`
0.3).

The vector's layout is fixed by `layout.py`, not by the track: numbers are
`<descriptor>`, lists `<descriptor>/<NN>` per element (from 00), covariances their upper
triangle `<descriptor>/<RR>-<CC>`, and string descriptors (keys, scales) one-hot
`<descriptor>=<value>`; names sorted. A descriptor a track's pool lacks, or a string
outside the known values, is NaN in its place, never a shifted vector.

`essentia` is imported in `load` only (the module is light): where no essentia wheel
exists for the platform, the extractor says so in one line and the rest of mfs works.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mfs.extractors.base import Extractor, OutputSpec, Windowing
from mfs.extractors.essentia.layout import NUMERIC, STRINGS
from mfs.extractors.segments import SegmentedConfig, combine, segment_ends

if TYPE_CHECKING:
    import torch

# Where each descriptor goes: name -> (kind, positions in the sorted vector). Kinds: "num"
# (positions of its flattened values), "cov" (its upper triangle), "str" (one per value).
Slots = dict[str, tuple[str, np.ndarray, tuple[str, ...]]]


def _layout() -> tuple[tuple[str, ...], Slots]:
    """The sorted dimension names and where each descriptor's values go among them."""
    entries: list[tuple[str, str, int]] = []  # (dimension name, descriptor, element)
    for descriptor, shape in NUMERIC:
        if not shape:
            entries.append((descriptor, descriptor, 0))
        elif len(shape) == 1:
            width = max(2, len(str(shape[0] - 1)))
            entries += [(f"{descriptor}/{i:0{width}d}", descriptor, i) for i in range(shape[0])]
        else:
            rows, cols = np.triu_indices(shape[0])
            entries += [(f"{descriptor}/{r:02d}-{c:02d}", descriptor, i)
                        for i, (r, c) in enumerate(zip(rows, cols, strict=True))]
    for descriptor, values in STRINGS:
        entries += [(f"{descriptor}={value}", descriptor, i) for i, value in enumerate(values)]
    entries.sort()
    names = tuple(name for name, _, _ in entries)
    positions: dict[str, dict[int, int]] = {}
    for position, (_, descriptor, element) in enumerate(entries):
        positions.setdefault(descriptor, {})[element] = position
    slots: Slots = {}
    for descriptor, shape in NUMERIC:
        by_element = positions[descriptor]
        kind = "cov" if len(shape) == 2 else "num"
        slots[descriptor] = (kind, np.array([by_element[i] for i in sorted(by_element)]), ())
    for descriptor, values in STRINGS:
        by_element = positions[descriptor]
        slots[descriptor] = ("str", np.array([by_element[i] for i in range(len(values))]),
                             values)
    return names, slots


FEATURE_NAMES, SLOTS = _layout()
END_OF_FILE = 1e6  # MusicExtractor's default `endTime`, seconds: the whole file


def flatten(pool: dict[str, object]) -> np.ndarray:
    """A pool's descriptors (name -> number, list, matrix or string) as the fixed vector."""
    vector = np.full(len(FEATURE_NAMES), np.nan, dtype=np.float32)
    for descriptor, (kind, positions, values) in SLOTS.items():
        if descriptor not in pool:
            continue
        value = pool[descriptor]
        if kind == "str":
            if value in values:
                vector[positions] = 0.0
                vector[positions[values.index(value)]] = 1.0
            continue
        array = np.asarray(value, dtype=np.float32)
        if kind == "cov":
            if array.ndim != 2 or array.shape[0] != array.shape[1]:
                continue
            array = array[np.triu_indices(array.shape[0])]
        array = array.reshape(-1)
        if array.size == positions.size:  # a wrong size is missing, not shifted
            vector[positions] = array
    return vector


@dataclass(frozen=True)
class EssentiaMusicConfig(SegmentedConfig):
    """`segment_s`, the longest track analysed whole (module docstring); otherwise
    MusicExtractor's defaults (its statistics, 44.1 kHz analysis)."""


class EssentiaMusic(Extractor):
    """Essentia MusicExtractor descriptors of the whole track, from its file."""

    name = "essentia-music"
    config_class = EssentiaMusicConfig
    config: EssentiaMusicConfig
    version = 1  # bump when the features change (Extractor.version)
    reads_file = True

    @property
    def sample_rate(self) -> int | None:
        return 44100  # MusicExtractor resamples to it itself; the pipeline decodes nothing

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=None)

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec(name="features", dim=len(FEATURE_NAMES), pooling=(),
                           feature_names=FEATURE_NAMES),)

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("essentia") is None:
            return ("the essentia package is not installed (its wheels exist for Linux "
                    "x86_64; elsewhere build Essentia from source)")
        return None

    def load(self, device: torch.device) -> None:
        super().load(device)
        self.music_extractor()

    def music_extractor(self) -> object:
        """Essentia's MusicExtractor, made once, with Essentia's logging silenced (it
        writes info and warnings for every track to stderr)."""
        if getattr(self, "_music", None) is None:
            import essentia

            essentia.log.infoActive = False
            essentia.log.warningActive = False
            import essentia.standard

            self._music = essentia.standard.MusicExtractor()
        return self._music

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError("essentia-music reads files (embed_file), not samples")

    def embed_file(self, path: Path) -> tuple[dict[str, np.ndarray], float]:
        from mfs.audio.decode import probe

        ends = segment_ends(probe(path).duration_s, self.config.segment_s)
        starts = [0.0, *ends[:-1]]
        ends[-1] = END_OF_FILE  # whatever the header said, the last segment reads to the end
        vectors, seconds = [], 0.0
        for start, end in zip(starts, ends, strict=True):
            music = self.music_extractor()
            music.configure(startTime=start, endTime=end)
            pool, _ = music(str(path))
            seconds = float(pool["metadata.audio_properties.length"])  # the file's
            values = {name: pool[name] for name in pool.descriptorNames() if name in SLOTS}
            vectors.append(flatten(values))
        durations = np.maximum(np.diff([*starts, seconds]), 0.0)
        return {"features": combine(np.stack(vectors), durations)[None]}, seconds

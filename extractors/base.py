"""The extractor contract: the one shape every feature extractor has from the outside.

Borrowed from lhotse and the HEAR API (see ../shared/STYLE.md): an extractor is a name, a
frozen config dataclass whose hash identifies its output, the sample rate it wants, how it
wants the track cut into windows, and one method from a batch of windows to embeddings
(a whole-track extractor may instead read each track block by block, `embed_track`).
Decoding, resampling, windowing, batching, device placement, precision (autocast) and
pooling over windows live once, in `mfs.extractors.pipeline` and `NeuralExtractor.load`,
never in a model module.

A model family is a subpackage (`fma518/`, `musicnn/`) whose `extractor.py` defines the
subclass and imports no torch or network code: naming, hashing and planning an extractor
(`mfs extract` with nothing to do) must not pay torch's ~3 s import. The network or DSP
code beside it is imported in `load`/`embed`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mfs.store.provenance import config_hash, source_version

if TYPE_CHECKING:
    # Only in annotations (postponed): resolving a spec and its config hash must not
    # import torch, which alone takes ~3 s (issue 14, `mfs extract` with nothing to do).
    import torch

# A whole track for `Extractor.embed_track`: each call starts one more pass over its mono
# float32 samples (numpy, at the extractor's rate), block by block.
TrackBlocks = Callable[[], Iterator[np.ndarray]]


@dataclass(frozen=True)
class ExtractorConfig:
    """Base of every extractor's config. Every field changes the output, so all are hashed."""

    def to_dict(self) -> dict:
        return asdict(self)


# What `NeuralConfig.precision` takes: a float type the model runs under, or `auto`.
PRECISIONS = ("float32", "bfloat16", "float16", "auto")


@dataclass(frozen=True)
class NeuralConfig(ExtractorConfig):
    """Base of the configs of extractors that run a torch model (`NeuralExtractor`).

    `precision` is what the pipeline runs the model under: `float32`, `bfloat16`,
    `float16` (CUDA only), or `auto` (bfloat16 where the hardware runs it natively,
    float32 elsewhere; `mfs.extractors.precision`). It is keyword-only so that a
    subclass's own fields may go without defaults. The requested value is a config field,
    so it enters the config hash, except at its default: `to_dict` leaves `float32` out,
    since every output stored before this field existed ran in float32 and keeps its hash.

    `keep_windows` also stores each window's outputs with its start time (`windows/` in
    store/SCHEMA.md), for timestamp embeddings and sequence models. The pooled feature
    rows are the same either way, but the config is a new output (the planner then also
    asks for the windows), so it is hashed; its default, False, is left out of `to_dict`
    like `precision`'s, so every hash stored before it existed stays.
    """

    precision: str = field(default="float32", kw_only=True)
    keep_windows: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r} unknown; choose one of "
                             f"{', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        config = asdict(self)
        if config["precision"] == "float32":
            del config["precision"]
        if not config["keep_windows"]:
            del config["keep_windows"]
        return config


@dataclass(frozen=True)
class Windowing:
    """How the shared pipeline cuts a decoded track before calling `Extractor.embed`.

    `seconds=None` hands the whole track over as one window (for features whose statistics
    are defined over the full track, like FMA's), or as `TrackBlocks` to an extractor that
    sets `reads_blocks`. Otherwise windows start every
    `hop_seconds`; a track shorter than one window is zero-padded to one window, and when
    the hops leave a tail uncovered a last window is aligned to the track's end, so every
    sample is seen and nothing is random.
    """

    seconds: float | None = None
    hop_seconds: float | None = None


def check_windows(window_seconds: float, hop_seconds: float | None) -> None:
    """The one check of a config's window fields: both positive (`hop_seconds=None`: the
    extractor's own hop), and no hop longer than the window, which would skip audio."""
    if window_seconds <= 0 or (hop_seconds is not None and hop_seconds <= 0):
        raise ValueError(f"window_seconds={window_seconds} and hop_seconds={hop_seconds} "
                         "must be positive")
    if hop_seconds is not None and hop_seconds > window_seconds:
        raise ValueError(f"hop_seconds={hop_seconds} > window_seconds={window_seconds} "
                         "would skip audio between windows")


@dataclass(frozen=True)
class OutputSpec:
    """One embedding the extractor returns per window, and how it is pooled per track.

    `layers > 0` means the per-window output has shape (layers, dim) and each layer is
    stored as its own column. `pooling` names the statistics over windows that are stored
    (column `<name>_<stat>`); an empty tuple stores the single per-track value as `<name>`
    (only meaningful with whole-track windowing).
    """

    name: str
    dim: int
    pooling: tuple[str, ...] = ("mean", "std")
    layers: int = 0
    feature_names: tuple[str, ...] | None = None  # optional name per dimension


class ExtractorUnavailable(RuntimeError):
    """Raised when an extractor cannot run here (weights or package missing); says how to fix."""


class Extractor(ABC):
    """A feature extractor. Subclasses set the class attributes and implement `embed`."""

    name: ClassVar[str]
    config_class: ClassVar[type[ExtractorConfig]]
    # torch intra-op threads the model runs best with on a CPU (None: torch's default).
    # Models of many small ops lose more to thread hand-offs than they gain from threads.
    cpu_threads: ClassVar[int | None] = None
    # Windows per model call when a run names none (`mfs extract` without --batch-size;
    # `ExtractSettings.batch_size_for`): what the model runs fastest with (bench/RESULTS.md).
    default_batch_size: ClassVar[int] = 16
    # Whole-track extractors (`Windowing(seconds=None)`) that can read a track block by
    # block set this and implement `embed_track`: the pipeline then hands each track over
    # as `TrackBlocks` and never holds it decoded whole, so an hour costs no more memory
    # than the extractor itself keeps.
    reads_blocks: ClassVar[bool] = False
    # Whole-track extractors whose library decodes files itself (essentia's MusicExtractor
    # takes a file name, not samples) set this and implement `embed_file`: the pipeline
    # then hands over the track's path and decodes nothing, instead of decoding for naught.
    reads_file: ClassVar[bool] = False
    # The version of the code that computes the outputs, part of the config hash so that
    # changed code is a new output, not stale rows that look current. Built-in extractors
    # bump it whenever their output changes (version 1 hashes as before versions existed);
    # None, a plug-in that declares none, is identified by its source file's hash.
    version: ClassVar[int | None] = None
    # Set by extractors whose `embed` takes `lengths` (the real samples of each window):
    # the pipeline passes it only to them, so extractors written before it keep working.
    uses_lengths: ClassVar[bool] = False

    def __init__(self, config: ExtractorConfig | None = None) -> None:
        self.config = config if config is not None else self.default_config()

    @classmethod
    def default_config(cls) -> ExtractorConfig:
        """The config a bare name (`mfs extract --extractor NAME`) runs with; specs override
        its fields. A class whose valid config differs from its config class's defaults
        (musicnn-msd needs model=MSD_musicnn) says so here, once."""
        return cls.config_class()

    # --- what the pipeline needs to know -------------------------------------------------
    @property
    @abstractmethod
    def sample_rate(self) -> int | None:
        """Rate the audio is resampled to before `embed`; None keeps the file's native rate."""

    @property
    @abstractmethod
    def windowing(self) -> Windowing: ...

    @property
    @abstractmethod
    def outputs(self) -> tuple[OutputSpec, ...]: ...

    @property
    def keeps_windows(self) -> bool:
        """Whether each window's outputs are stored too (`NeuralConfig.keep_windows`); read
        here once, so the pipeline and the planner need not know which configs have it."""
        return bool(getattr(self.config, "keep_windows", False))

    def model_files(self) -> list[Path]:
        """Files whose bytes define the model (hashed into every stored row). None by default."""
        return []

    def unavailable_reason(self) -> str | None:
        """None when the extractor can run here, else one line saying how to make it run."""
        return None

    def model_location(self) -> str | None:
        """Where the model's files were found (`mfs extractors` shows it), or None."""
        return None

    # --- running ----------------------------------------------------------------------
    def load(self, device: torch.device) -> None:
        """Load weights onto `device`. Called once before the first `embed`."""
        self.device = device

    @property
    def precision(self) -> str:
        """The float type the model runs under, recorded with each row (`none`: no model)."""
        return "none"

    @abstractmethod
    def embed(self, windows: torch.Tensor, sample_rate: int,
              lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Map windows (batch, samples), mono float32 on the loaded device, to embeddings.

        An extractor that sets `uses_lengths` also gets `lengths` (batch,) int64: how many
        leading samples of each window are real audio. The rest is the zero padding of a
        track shorter than one window, which it should leave out (crop, or mask). Others
        are called without it and may leave it out of their signature.

        Returns one tensor per `OutputSpec`: (batch, dim), or (batch, layers, dim).
        """

    def embed_track(self, blocks: TrackBlocks, sample_rate: int) -> dict[str, torch.Tensor]:
        """One whole track, read through `blocks()` as often as the features need (a
        first pass for what depends on the whole track, such as a tuning or a maximum).
        Returns what `embed` returns for a batch of that one track. Only called when
        `reads_blocks` is set; errors as in `embed` (ValueError, RuntimeError), and the
        audio's own (`AudioError`) pass through."""
        raise NotImplementedError(f"{self.name}: reads_blocks is set without embed_track")

    def embed_file(self, path: Path) -> tuple[dict[str, np.ndarray], float]:
        """One whole track, decoded by the extractor's own library from `path`: what `embed`
        returns for a batch of that one track (as numpy), and the seconds of audio it read.
        Only called when `reads_file` is set; errors as in `embed` (ValueError,
        RuntimeError, OSError)."""
        raise NotImplementedError(f"{self.name}: reads_file is set without embed_file")

    # --- identity ---------------------------------------------------------------------
    @classmethod
    def code_version(cls) -> int | str:
        """`version`, or for a plug-in without one the hash of its class's source file."""
        if cls.version is not None:
            return cls.version
        return source_version(Path(inspect.getsourcefile(cls) or inspect.getfile(cls)))

    @classmethod
    def hash_config(cls, config: dict) -> str:
        """The hash a config (as `ExtractorConfig.to_dict` or its stored JSON) gets from
        this code: `mfs status` compares it with stored hashes to find stale outputs."""
        return config_hash(cls.name, config, cls.code_version())

    def config_hash(self) -> str:
        """Short stable hash of name + config + code version: a new config or new code is a
        new output, never an overwrite."""
        return self.hash_config(self.config.to_dict())


class NeuralExtractor(Extractor):
    """An extractor that runs a torch model. The subclass builds it (`build`, on the CPU);
    the shared `load` moves it to the device and resolves the config's precision, which
    the pipeline then runs `embed` under (autocast) and records with each row, so no model
    module places or casts itself."""

    config: NeuralConfig

    def __init__(self, config: NeuralConfig | None = None) -> None:
        super().__init__(config)
        if self.keeps_windows and self.windowing.seconds is None:
            raise ValueError(f"{self.name} reads whole tracks: it has no windows to keep "
                             "(keep_windows is for windowed extractors)")

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """The model with its weights, on the CPU; `ExtractorUnavailable` when it cannot be
        built here. `load` keeps it as `self.model`."""

    def load(self, device: torch.device) -> None:
        from mfs.extractors.precision import resolve_precision

        # Resolved first: a precision this device cannot run fails before weights load.
        self._precision = resolve_precision(self.config.precision, device)
        self.model = self.build().to(device).eval()
        self.device = device

    @property
    def precision(self) -> str:
        """The resolved precision (`auto` made concrete) once loaded, else the requested one."""
        return getattr(self, "_precision", self.config.precision)

"""LAION CLAP for music (`clap-music`, laion/larger_clap_music) as the pipeline and the CLI
see it: 48 kHz, deterministic consecutive 10 s windows over the whole track (its feature
extractor would crop a random 10 s), the projected audio embedding per window, and the
text embeddings of prompts for zero-shot genre (`mfs.analysis.prompts`).

Light like every `extractor.py`: the network (`network.py`) is imported in `build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import ExtractorUnavailable, OutputSpec, Windowing
from mfs.extractors.hf.extractor import FixedInputConfig, HFExtractor
from mfs.extractors.hf.locate import ModelSource

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import torch

SAMPLE_RATE = 48000
WINDOW_SECONDS = 10.0  # the model's max_length_s: a window is never cropped, at random or not
PROJECTION = 512  # the published model's, until a found config.json says otherwise


@dataclass(frozen=True)
class ClapMusicConfig(FixedInputConfig):
    window_seconds: ClassVar[float] = WINDOW_SECONDS


class ClapMusic(HFExtractor):
    """Per 10 s window, the 512-d projected audio embedding: `audio` pooled as mean and std,
    and `audio_unit`, the embedding L2-normalised per window, pooled as its mean.

    `audio_unit_mean` is what zero-shot scores (`zero_shot_column`): its cosine with a text
    embedding is the mean over the track's windows of each window's cosine, CLAP's own
    similarity. A normalised `audio_mean` would add nothing, since a cosine ignores scale;
    averaging unit vectors instead keeps a loud window's larger norm from outweighing the rest.
    """

    name = "clap-music"
    config_class = ClapMusicConfig
    config: ClapMusicConfig
    source = ModelSource("laion/larger_clap_music", ("CLAP/larger_clap_music",), ("clap",))
    zero_shot_column: ClassVar[str] = "audio_unit_mean"

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        return self.config.windowing()

    @property
    def projection_dim(self) -> int:
        try:
            return int(self.found.config.get("projection_dim", PROJECTION))
        except ExtractorUnavailable:
            return PROJECTION

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec("audio", self.projection_dim),
                OutputSpec("audio_unit", self.projection_dim, pooling=("mean",)))

    def build(self) -> torch.nn.Module:
        from mfs.extractors.clap.network import ClapAudioNetwork

        return ClapAudioNetwork(self.found)

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(windows)

    # --- text prompts (zero-shot) ----------------------------------------------------------
    def text_files(self) -> list[Path]:
        """Files whose bytes define the text embeddings: the model's and the tokenizer's."""
        from mfs.extractors.clap.network import tokenizer_files

        return [*self.found.files, *tokenizer_files(self.found)]

    def embed_texts(self, texts: list[str], device: torch.device | None = None) -> np.ndarray:
        """(len(texts), 512) projected text embeddings, float32, from the same folder."""
        from mfs.extractors.clap.network import text_embeddings

        return text_embeddings(self.found, texts, device).numpy()

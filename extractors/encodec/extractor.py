"""EnCodec 24 kHz as the pipeline sees it: the encoder's continuous latent (128-d at 75 Hz),
before the residual quantiser turns it into codes, summarised per window by its time mean
and time spread, then pooled over windows.

Light like every `extractor.py`: transformers is imported in `build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfs.extractors.base import ExtractorUnavailable, OutputSpec, Windowing, check_windows
from mfs.extractors.hf.extractor import HFConfig, HFExtractor
from mfs.extractors.hf.locate import ModelSource

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 24000
LATENT_DIM = 128  # the published model's hidden_size; a model folder's config.json rules
# What `EncodecModel.encode` does before `encoder(input)` that this extractor does not do:
# each of these config values would change the latent it quantises, so a folder with
# another value holds another model (encodec_48khz normalises and chunks, in stereo).
PUBLISHED = {"sampling_rate": SAMPLE_RATE, "audio_channels": 1, "normalize": False,
             "chunk_length_s": None}


@dataclass(frozen=True)
class EncodecConfig(HFConfig):
    """Window and hop, in seconds, of the windows the encoder runs on.

    EnCodec's encoder is convolutional with a 2-layer LSTM, so it runs on audio of any
    length and costs the same per second whatever the window; the window only bounds
    memory (an hour is never encoded whole) and sets what one window's statistics see.
    11 s every 10 s: the 30.0-30.65 s GTZAN clips (29.93 s at the shortest) all get
    exactly three windows, [0, 11], [10, 21] and one aligned to the end, with 1-2 s
    overlaps. A hop that divides 30 s (10 s windows every 10 s) would instead add a fourth,
    end-aligned window for the 13 ms past 30 s of most GTZAN clips, counting their last
    10 s twice in every pooled statistic.
    """

    window_seconds: float = 11.0
    hop_seconds: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_windows(self.window_seconds, self.hop_seconds)


class Encodec24kHz(HFExtractor):
    """facebook/encodec_24khz's encoder output, `model.encoder(audio)` exactly: mono
    24 kHz in, no normalisation and no chunking (its config has `normalize: false` and
    no `chunk_length_s`, so `EncodecModel.encode` quantises this very tensor).

    Per window: `latent_mean` and `latent_std` over the window's 75 Hz frames (the std
    with no bias correction, so a track of a single frame has 0, not NaN). Over windows:
    the mean and spread of the window means, the mean of the window spreads.
    """

    name = "encodec-24khz"
    config_class = EncodecConfig
    config: EncodecConfig
    source = ModelSource("facebook/encodec_24khz", ("EnCodec/encodec_24khz",), ("encodec",))

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=self.config.window_seconds,
                         hop_seconds=self.config.hop_seconds)

    @property
    def latent_dim(self) -> int:
        """The latent's width: the found model's `hidden_size`, else the published 128
        (`mfs extractors` lists outputs of models that are not installed)."""
        try:
            return int(self.found.config.get("hidden_size", LATENT_DIM))
        except ExtractorUnavailable:
            return LATENT_DIM

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec("latent_mean", self.latent_dim, pooling=("mean", "std")),
                OutputSpec("latent_std", self.latent_dim, pooling=("mean",)))

    def build(self) -> torch.nn.Module:
        from transformers import EncodecConfig as HFEncodecConfig
        from transformers import EncodecModel

        from mfs.extractors.hf.loading import load_model, model_config

        found = self.found
        config = model_config(HFEncodecConfig, found)
        config._attn_implementation = "eager"  # no attention; transformers refuses SDPA
        other = {key: getattr(config, key) for key, value in PUBLISHED.items()
                 if getattr(config, key) != value}
        if other:
            settings = ", ".join(f"{key}={value}" for key, value in other.items())
            raise ExtractorUnavailable(
                f"{found.directory}: an EnCodec with {settings}, not the 24 kHz mono model "
                f"{self.name} runs ({', '.join(f'{k}={v}' for k, v in PUBLISHED.items())})")
        from mfs.extractors.encodec.encoder import TimeMajorEncodecEncoder

        # The whole checkpoint is loaded, so weights that do not fit are refused; only the
        # encoder is kept (the quantiser and decoder take no part in the latent), computed
        # time-major on its own weights: ~1.8x faster on a CPU (encoder.py).
        encoder = load_model(EncodecModel, config, found).encoder
        try:
            return TimeMajorEncodecEncoder(encoder)
        except ValueError as error:
            raise ExtractorUnavailable(f"{found.directory}: {error}") from None

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.model(windows[:, None, :]).float()  # (batch, dim, frames)
        return {"latent_mean": latent.mean(dim=2),
                "latent_std": latent.std(dim=2, correction=0)}

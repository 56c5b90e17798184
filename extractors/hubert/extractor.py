"""The HuBERT-graph extractors: MERT-v1 (95M, 330M), HuBERT-large and wav2vec2-large, every
layer's time-mean plus the last layer's time-std, per window, pooled per track.

One graph, four checkpoints: MERT-v1's inference graph is HuBERT's (its hub code builds the
stock `HubertEncoder`/`HubertEncoderStableLayerNorm`; 330M is the stable-layer-norm one),
so its config.json and weights load into transformers' own `HubertModel` and its remote
code never runs (it also returns no hidden states on transformers >= 5.16). Light, like
every `extractor.py`: the network code (`network.py`, torch + transformers) is imported in
`build`; naming, hashing and planning read config.json at most.

**Layers** (`hidden_lNN_mean`, NN = 0..L): 0 is the transformer's input (CNN features,
projection and positional conv; after the input layer norm in post-LN models), as MARBLE
counts; 1..L-1 the outputs of transformer layers 1..L-1; L is the model's
`last_hidden_state`, i.e. after the final layer norm in stable-layer-norm (pre-LN) models.
That is what transformers <= 5.15 and MERT's remote code return as `hidden_states[L]`;
native transformers >= 5.16 returns the pre-final-LN state there instead, so layer L is
taken from `last_hidden_state` to be the same on every transformers version (each row
records the version, `versions`). `mfs bench LIB --features mert-v1-95m:layer=7` picks one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from mfs.extractors.base import ExtractorUnavailable, OutputSpec, Windowing, check_windows
from mfs.extractors.hf.extractor import HFConfig, HFExtractor
from mfs.extractors.hf.locate import ModelSource

if TYPE_CHECKING:
    import torch
    from torch import nn

# Both outputs are per-window statistics over the window's frames, pooled over a track's
# windows by their mean (store/SCHEMA.md): `hidden_lNN_mean` is the track's time-mean of
# layer NN, `last_std_mean` the mean over windows of the last layer's time-std.
HIDDEN = "hidden"
LAST_STD = "last_std"
# What `do_normalize` is when a model folder has no preprocessor_config.json.
DEFAULT_NORMALIZE = True


@dataclass(frozen=True)
class HubertFamilyConfig(HFConfig):
    """Windows, input normalisation, and the `HFConfig` fields (`model_path`, `precision`).

    **Windows: 10.25 s every 10.25 s.** A 30 s clip is then 3 windows whatever its exact
    length up to 30.75 s (GTZAN's are 30.0-30.12 s, a few up to ~30.6 s; FMA's 29.98-30.0 s).
    The pipeline adds an end-aligned window whenever a tail is left uncovered
    (`window_starts`), so at 24 kHz a 30.013 s GTZAN clip is 4 windows of 10 s (40 s of
    compute, 1.33x, its last 10 s counted twice in the time-mean), 7 of 5 s (35 s), 2 of
    30 s (MARBLE's whole clips: 60 s, 2x), and 3 of 10.25 s (30.75 s, 1.02x, 0.74 s counted
    twice); FMA's 29.98 s clips are 3 windows of 10 or 10.25 s. Shorter windows give each
    frame less context and the track more window edges; longer ones cost more attention
    (quadratic in frames). MERT pre-trained on 5 s crops, HuBERT and wav2vec2 on crops of
    up to 250k samples (15.6 s), so ~10 s stays within what all four saw.

    **`normalize`** zero-means and unit-variances each window over its real samples, as
    Wav2Vec2FeatureExtractor's `do_normalize` does. None (default) follows the model
    folder's preprocessor_config.json; without that file it is True: what MERT-v1-95M's
    file says, what MARBLE v2 uses for both MERT models, and what fairseq trained HuBERT-
    and wav2vec2-large with. MARBLE v1 instead sets `processor_normalize: false` for
    MERT-v1-330M: `mert-v1-330m:normalize=false` reproduces that.
    """

    window_seconds: float = 10.25
    hop_seconds: float = 10.25
    normalize: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_windows(self.window_seconds, self.hop_seconds)


class HubertFamily(HFExtractor):
    """Every layer's time-mean and the last layer's time-std of a HuBERT-graph model.

    `layers` and `dim` are the published model's; a model folder whose config.json says
    otherwise (a tiny test model, a fine-tuned variant) sets them instead, so the stored
    columns always match what the model computes.
    """

    config_class = HubertFamilyConfig
    config: HubertFamilyConfig
    rate: ClassVar[int]
    layers: ClassVar[int]  # transformer layers (L); L + 1 hidden states are stored
    dim: ClassVar[int]
    graph: ClassVar[str]  # "hubert" or "wav2vec2": which transformers class runs it

    @property
    def sample_rate(self) -> int:
        return self.rate

    @property
    def windowing(self) -> Windowing:
        return Windowing(seconds=self.config.window_seconds,
                         hop_seconds=self.config.hop_seconds)

    def _shape(self) -> tuple[int, int]:
        """(transformer layers, width): from the found config.json, else the published."""
        try:
            config = self.found.config
        except ExtractorUnavailable:
            return self.layers, self.dim
        return (int(config.get("num_hidden_layers", self.layers)),
                int(config.get("hidden_size", self.dim)))

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        layers, dim = self._shape()
        return (OutputSpec(HIDDEN, dim, pooling=("mean",), layers=layers + 1),
                OutputSpec(LAST_STD, dim, pooling=("mean",)))

    @property
    def normalize(self) -> bool:
        """Whether windows are normalised: the config's choice, else the folder's
        preprocessor_config.json `do_normalize`, else `DEFAULT_NORMALIZE`."""
        if self.config.normalize is not None:
            return self.config.normalize
        path = self.found.directory / "preprocessor_config.json"
        if not path.is_file():
            return DEFAULT_NORMALIZE
        try:
            return bool(json.loads(path.read_text()).get("do_normalize", DEFAULT_NORMALIZE))
        except (OSError, ValueError) as error:
            raise ExtractorUnavailable(f"{path}: not a readable preprocessor config "
                                       f"({error})") from None

    def build(self) -> nn.Module:
        from mfs.extractors.hubert.network import build_model

        self._normalize = self.normalize
        return build_model(self.graph, self.found)

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        from mfs.extractors.hubert.network import layer_statistics, zero_mean_unit_var

        if self._normalize:
            windows = zero_mean_unit_var(windows)
        means, last_std = layer_statistics(self.model, windows)
        return {HIDDEN: means, LAST_STD: last_std}


class MertV1_95M(HubertFamily):  # noqa: N801 - the model's own name
    """MERT-v1-95M: 12 post-LN layers x 768 at 24 kHz (75 frames/s); CC-BY-NC-4.0."""

    name = "mert-v1-95m"
    source = ModelSource("m-a-p/MERT-v1-95M", ("MERT/MERT-v1-95M",),
                         ("mert_model", "MERT", "hubert"))
    rate, layers, dim, graph = 24000, 12, 768, "hubert"


class MertV1_330M(HubertFamily):  # noqa: N801 - the model's own name
    """MERT-v1-330M: 24 stable-layer-norm (pre-LN) layers x 1024 at 24 kHz; CC-BY-NC-4.0."""

    name = "mert-v1-330m"
    source = ModelSource("m-a-p/MERT-v1-330M", ("MERT/MERT-v1-330M",),
                         ("mert_model", "MERT", "hubert"))
    rate, layers, dim, graph = 24000, 24, 1024, "hubert"


class HubertLarge(HubertFamily):
    """HuBERT-large pre-trained on Libri-Light 60k h (speech): 24 pre-LN layers x 1024."""

    name = "hubert-large"
    source = ModelSource("facebook/hubert-large-ll60k", ("HuBERT/hubert-large-ll60k",),
                         ("hubert",))
    rate, layers, dim, graph = 16000, 24, 1024, "hubert"


class Wav2Vec2Large(HubertFamily):
    """wav2vec 2.0 large pre-trained on LibriSpeech 960 h (speech): 24 layers x 1024."""

    name = "wav2vec2-large"
    source = ModelSource("facebook/wav2vec2-large", ("wav2vec2/wav2vec2-large",),
                         ("wav2vec2",))
    rate, layers, dim, graph = 16000, 24, 1024, "wav2vec2"

"""The HuBERT-graph models in transformers' own classes, and the per-window statistics the
extractors store. Imported by `HubertFamily.build`/`forward` only (torch, transformers).
"""

from __future__ import annotations

import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.hf.loading import load_model, model_config
from mfs.extractors.hf.locate import FoundModel
from mfs.extractors.hubert.frontend import TimeMajorFeatureEncoder

GRAPHS = {"hubert": (HubertConfig, HubertModel), "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model)}
# Wav2Vec2FeatureExtractor's `zero_mean_unit_var_norm` adds this to the variance.
NORM_EPS = 1e-7


def build_model(graph: str, found: FoundModel) -> torch.nn.Module:
    """`found`'s weights in the built-in class of `graph` (MERT's config.json read as a
    HubertConfig: its extra keys, `attention_relax`, `deepnorm`, `feature_extractor_cqt`,
    ride along unused; the two that would change the graph are refused)."""
    config_class, model_class = GRAPHS[graph]
    if found.config.get("deepnorm") or found.config.get("feature_extractor_cqt"):
        raise ExtractorUnavailable(
            f"{found.directory}: a MERT with deepnorm or CQT input features is not HuBERT's "
            "graph (only MERT-v1's plain HuBERT graph runs without its remote code)")
    model = load_model(model_class, model_config(config_class, found), found)
    # the same convolutions and norms, time-major: faster on a CPU (frontend.py)
    model.feature_extractor = TimeMajorFeatureEncoder(model.feature_extractor)
    return model


def zero_mean_unit_var(windows: torch.Tensor) -> torch.Tensor:
    """Each window (batch, samples), all real audio, with zero mean and unit variance, as
    Wav2Vec2FeatureExtractor's `do_normalize` computes it (population variance + 1e-7)."""
    windows = windows.float()
    mean = windows.mean(dim=1, keepdim=True)
    var = windows.var(dim=1, keepdim=True, correction=0)
    return (windows - mean) / torch.sqrt(var + NORM_EPS)


def layer_states(model: torch.nn.Module, windows: torch.Tensor) -> list[torch.Tensor]:
    """The L + 1 layers (batch, frames, dim) of windows that are all real audio: the
    hidden states 0..L-1 and, as layer L, `last_hidden_state` (after the final layer norm
    of a stable-layer-norm model on every transformers version, see `extractor.py`)."""
    output = model(windows, output_hidden_states=True)
    states = output.hidden_states
    layers = model.config.num_hidden_layers
    if states is None or len(states) != layers + 1:
        raise RuntimeError(f"{type(model).__name__} returned "
                           f"{'no' if states is None else len(states)} hidden states, "
                           f"expected {layers + 1}")
    return [*states[:layers], output.last_hidden_state]


def layer_statistics(model: torch.nn.Module, windows: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window: every layer's mean over frames (batch, L + 1, dim) and the last layer's
    (population) std over frames (batch, dim), in float32 whatever the autocast."""
    states = layer_states(model, windows)
    means = torch.stack([state.float().mean(dim=1) for state in states], dim=1)
    last_std = states[-1].float().std(dim=1, correction=0)
    return means, last_std

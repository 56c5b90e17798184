"""A HuBERT / wav2vec2 / MERT-v1 forward pass written from the architecture in plain torch,
reading a checkpoint's own tensors by their names (legacy `weight_g`/`weight_v` too), to
hold the extractors to. It calls none of transformers' modules, so a change in how
transformers builds, loads or reports these models shows up as a difference here.

The graph (fairseq's wav2vec2/HuBERT, as MERT-v1's code builds it): a conv feature encoder
(group norm on the first conv, or layer norm on every conv), GELU; a feature projection
(layer norm, linear); a grouped positional conv with weight norm over the kernel axis,
"same" padded (one frame dropped for an even kernel), GELU, added to its input; then
post-LN layers (input layer norm first; each layer: x = LN(x + attn(x)); x = LN(x + ff(x)))
or pre-LN layers (x = x + attn(LN(x)); x = x + ff(LN(x)); one final LN after the last).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - torch's own convention


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base model's tensors: a `hubert.`/`wav2vec2.` prefix dropped, heads left out."""
    out = {}
    for key, value in state.items():
        for prefix in ("hubert.", "wav2vec2."):
            if key.startswith(prefix):
                key = key.removeprefix(prefix)
        if key.startswith(("feature_extractor.", "feature_projection.", "encoder.")):
            out[key] = value.float()
    return out


def pos_conv_weight(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The positional conv's weight from its weight-norm parts (norm over all but dim 2)."""
    base = "encoder.pos_conv_embed.conv."
    g = state.get(base + "weight_g", state.get(base + "parametrizations.weight.original0"))
    v = state.get(base + "weight_v", state.get(base + "parametrizations.weight.original1"))
    return g * v / v.norm(dim=(0, 1), keepdim=True)


def layer_norm(x: torch.Tensor, state: dict, name: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"], eps)


def attention(x: torch.Tensor, state: dict, name: str, heads: int) -> torch.Tensor:
    batch, frames, dim = x.shape

    def project(which: str) -> torch.Tensor:
        y = F.linear(x, state[f"{name}.{which}_proj.weight"], state[f"{name}.{which}_proj.bias"])
        return y.view(batch, frames, heads, dim // heads).transpose(1, 2)

    q, k, v = project("q"), project("k"), project("v")
    weights = torch.softmax(q @ k.transpose(-1, -2) / (dim // heads) ** 0.5, dim=-1)
    mixed = (weights @ v).transpose(1, 2).reshape(batch, frames, dim)
    return F.linear(mixed, state[f"{name}.out_proj.weight"], state[f"{name}.out_proj.bias"])


def feed_forward(x: torch.Tensor, state: dict, name: str) -> torch.Tensor:
    hidden = F.gelu(F.linear(x, state[f"{name}.intermediate_dense.weight"],
                             state[f"{name}.intermediate_dense.bias"]))
    return F.linear(hidden, state[f"{name}.output_dense.weight"],
                    state[f"{name}.output_dense.bias"])


def reference_layers(state: dict[str, torch.Tensor], config: dict,
                     wave: torch.Tensor) -> list[torch.Tensor]:
    """The L + 1 layers (batch, frames, dim) of `wave` (batch, samples): the transformer's
    input, the outputs of layers 1..L-1, and the model's output (after the final LN of a
    pre-LN model)."""
    state = strip_prefix(state)
    eps = config.get("layer_norm_eps", 1e-5)
    x = wave.float()[:, None]
    for i, stride in enumerate(config["conv_stride"]):
        name = f"feature_extractor.conv_layers.{i}"
        x = F.conv1d(x, state[name + ".conv.weight"], state.get(name + ".conv.bias"),
                     stride=stride)
        if config["feat_extract_norm"] == "layer":
            x = layer_norm(x.transpose(1, 2), state, name + ".layer_norm", 1e-5).transpose(1, 2)
        elif i == 0:
            x = F.group_norm(x, x.shape[1], state[name + ".layer_norm.weight"],
                             state[name + ".layer_norm.bias"], 1e-5)
        x = F.gelu(x)
    x = x.transpose(1, 2)
    if "feature_projection.layer_norm.weight" in state:
        x = layer_norm(x, state, "feature_projection.layer_norm", eps)
    x = F.linear(x, state["feature_projection.projection.weight"],
                 state["feature_projection.projection.bias"])
    kernel = config["num_conv_pos_embeddings"]
    position = F.conv1d(x.transpose(1, 2), pos_conv_weight(state),
                        state["encoder.pos_conv_embed.conv.bias"], padding=kernel // 2,
                        groups=config["num_conv_pos_embedding_groups"])
    if kernel % 2 == 0:
        position = position[:, :, :-1]
    x = x + F.gelu(position).transpose(1, 2)
    stable = config["do_stable_layer_norm"]
    if not stable:
        x = layer_norm(x, state, "encoder.layer_norm", eps)
    layers = [x]
    for i in range(config["num_hidden_layers"]):
        name = f"encoder.layers.{i}"
        heads = config["num_attention_heads"]
        if stable:
            x = x + attention(layer_norm(x, state, name + ".layer_norm", eps), state,
                              name + ".attention", heads)
            x = x + feed_forward(layer_norm(x, state, name + ".final_layer_norm", eps),
                                 state, name + ".feed_forward")
        else:
            x = layer_norm(x + attention(x, state, name + ".attention", heads), state,
                           name + ".layer_norm", eps)
            x = layer_norm(x + feed_forward(x, state, name + ".feed_forward"), state,
                           name + ".final_layer_norm", eps)
        layers.append(x)
    if stable:
        layers[-1] = layer_norm(x, state, "encoder.layer_norm", eps)
    return layers


def reference_statistics(state: dict, config: dict, wave: torch.Tensor,
                         normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What the extractors store per window: every layer's time-mean (batch, L + 1, dim)
    and the last layer's population time-std (batch, dim), of `wave` normalised per row as
    Wav2Vec2FeatureExtractor does when `normalize`."""
    if normalize:
        wave = (wave - wave.mean(1, keepdim=True)) / torch.sqrt(
            wave.var(1, keepdim=True, unbiased=False) + 1e-7)
    layers = reference_layers(state, config, wave)
    means = torch.stack([layer.mean(1) for layer in layers], 1)
    return means, layers[-1].std(1, unbiased=False)

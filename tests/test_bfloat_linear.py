"""`bfloat_linear`: the transformers' linear layers fused for CPU bfloat16 autocast equal
`nn.Linear` (+ GELU) exactly in float32 and to bfloat16 rounding under autocast, and
`install` rewrites the feed-forward blocks of the families we load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_ast import save_ast
from transformers import ASTConfig, ASTForAudioClassification, HubertConfig, HubertModel

from mfs.extractors import registry
from mfs.extractors.hf import bfloat_linear

needs_onednn = pytest.mark.skipif(not bfloat_linear.ONEDNN,
                                  reason="this torch has no oneDNN: the layers run as nn.Linear")


def layer_and_input(gelu: bool, seed: int = 0) -> tuple[torch.nn.Linear, torch.Tensor, object]:
    """A random layer (96 -> 160), a copy fused by `fuse`, and a (2, 50, 96) input."""
    torch.manual_seed(seed)
    linear = torch.nn.Linear(96, 160).eval()
    fused = bfloat_linear.fuse(torch.nn.Linear(96, 160).eval(), gelu)
    fused.load_state_dict(linear.state_dict())
    return linear, torch.randn(2, 50, 96), fused


@pytest.mark.parametrize("gelu", [False, True])
def test_float32_is_nn_linear_bit_for_bit(gelu: bool) -> None:
    linear, x, fused = layer_and_input(gelu)
    with torch.inference_mode():
        expected = F.gelu(linear(x)) if gelu else linear(x)
        assert torch.equal(fused(x), expected)


@needs_onednn
@pytest.mark.parametrize("gelu", [False, True])
def test_bfloat16_autocast_equals_autocast_linear_to_rounding(gelu: bool) -> None:
    linear, x, fused = layer_and_input(gelu)
    with torch.inference_mode():
        exact = F.gelu(linear(x)) if gelu else linear(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = F.gelu(linear(x)) if gelu else linear(x)
            ours = fused(x)
    assert ours.dtype == torch.bfloat16 and ours.shape == exact.shape
    assert fused._bfloat is not None  # the fused path ran, on weights cast once
    ours_error = (ours.float() - exact).abs().max()
    autocast_error = (autocast.float() - exact).abs().max()
    assert ours_error <= 1.5 * autocast_error, (ours_error, autocast_error)


@pytest.mark.parametrize("family", ["ast", "hubert"])
def test_install_fuses_gelu_into_each_feed_forward_and_keeps_float32(family: str) -> None:
    torch.manual_seed(0)
    if family == "ast":
        config = ASTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=1,
                           intermediate_size=128, max_length=100)
        model = ASTForAudioClassification(config).eval()
        inputs = torch.randn(1, 100, 128)
    else:
        config = HubertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=1,
                              intermediate_size=128, conv_dim=[16, 16], conv_stride=[5, 4],
                              conv_kernel=[10, 8], num_conv_pos_embeddings=16,
                              num_conv_pos_embedding_groups=4)
        model = HubertModel(config).eval()
        inputs = torch.randn(1, 4000)
    with torch.inference_mode():
        before = model(inputs)[0]
        bfloat_linear.install(model)
        after = model(inputs)[0]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m) is bfloat_linear.BfloatLinear for m in linears)
    assert sum(m.gelu for m in linears) == 2  # one per layer's feed-forward
    if family == "ast":
        activations = [layer.mlp.activation_fn
                       for layer in model.audio_spectrogram_transformer.layers]
    else:
        activations = [layer.feed_forward.intermediate_act_fn for layer in model.encoder.layers]
    assert all(isinstance(a, torch.nn.Identity) for a in activations)
    assert torch.equal(before, after)


@needs_onednn
@pytest.mark.usefixtures("hf_offline")
@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_loading_in_bfloat16_makes_the_weights_then(precision: str, tmp_path: Path) -> None:
    """`ast:model_path=DIR:precision=P` as the CLI loads it: in bfloat16 every linear
    layer's bfloat16 weights exist once loaded (the first batch does not pay for them);
    in float32 none are made."""
    save_ast(tmp_path / "ast")
    spec = f"ast:model_path={tmp_path / 'ast'}:precision={precision}"
    extractor = registry.create_from_spec(spec)
    extractor.load(torch.device("cpu"))
    linears = [m for m in extractor.model.modules() if isinstance(m, bfloat_linear.BfloatLinear)]
    assert linears
    assert all((m._bfloat is not None) == (precision == "bfloat16") for m in linears)

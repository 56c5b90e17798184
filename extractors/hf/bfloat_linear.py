"""The transformers' linear layers under CPU bfloat16 autocast: one oneDNN call per layer,
bias and (for a feed-forward's first layer) the exact GELU in its epilogue, on weights
cast to bfloat16 once.

Why: autocast casts every weight again on each model call, and a linear layer followed by
GELU makes three passes over its (tokens, 3072) output: the bias, the rounding, the GELU.
In AST, in bfloat16, those passes cost more than a tenth as much as the matrix products
themselves (torch.profiler, 8 windows: GELU 0.24 s, copies 0.4 s, against 4.4 s of
`addmm`). `torch.ops.mkldnn._linear_pointwise`, the call torch's own compiler emits for a
linear layer with a fused activation, does it in one pass, with the GELU taken on the
float32 sum before it is rounded (closer to float32, not further).

Everything else (float32, float16, CUDA, a torch without oneDNN, gradients) runs the
layer exactly as `nn.Linear` and `nn.functional.gelu` do, so float32 outputs do not move
by a bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.activations import GELUActivation

# (linear, activation) attribute pairs of the feed-forward blocks of our families:
# AST's `ASTMLP`, the HuBERT graph's `HubertFeedForward` (MERT, HuBERT, wav2vec2), and
# CLAP's `ClapAudioIntermediate` / `ClapTextIntermediate`.
FEED_FORWARDS = (("fc1", "activation_fn"), ("intermediate_dense", "intermediate_act_fn"),
                 ("dense", "intermediate_act_fn"))
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# Weights packed once into oneDNN's blocked layout, as torch's compiler freezes them:
# 5-13 % faster than plain bfloat16 weights at AST's shapes (1,214-24,000 rows, same
# results bit for bit), whatever the row count the packing is asked for.
PACK = ONEDNN and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
PACKING_ROWS = 4096


class BfloatLinear(torch.nn.Linear):
    """`nn.Linear`, optionally followed by the exact GELU, that runs as one oneDNN call
    under CPU bfloat16 autocast. Made from a loaded layer by `fuse`, which keeps its
    parameters (and so its state-dict names)."""

    gelu: bool
    _bfloat: tuple[torch.Tensor, torch.Tensor | None] | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fused_applies(x):
            weight, bias = self._bfloat_weights()
            flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
            attr, algorithm = ("gelu", "none") if self.gelu else ("none", "")
            out = torch.ops.mkldnn._linear_pointwise(flat, weight, bias, attr, [], algorithm)
            return out.view(*x.shape[:-1], out.shape[-1])
        out = F.linear(x, self.weight, self.bias)
        return F.gelu(out) if self.gelu else out

    def _fused_applies(self, x: torch.Tensor) -> bool:
        return (ONEDNN and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16
                and not (torch.is_grad_enabled() and self.weight.requires_grad))

    def _bfloat_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weights in bfloat16 (packed for oneDNN where it can), made on the first
        bfloat16 call and kept: the model's weights do not change during inference. Made
        outside inference mode, so later calls under `no_grad` may use them too."""
        if self._bfloat is None:
            with torch.inference_mode(False), torch.no_grad():
                weight = self.weight.to(torch.bfloat16)
                if PACK:
                    weight = torch.ops.mkldnn._reorder_linear_weight(weight, PACKING_ROWS)
                bias = None if self.bias is None else self.bias.to(torch.bfloat16)
                self._bfloat = (weight, bias)
        return self._bfloat


def fuse(linear: torch.nn.Linear, gelu: bool) -> BfloatLinear:
    """`linear` turned into a BfloatLinear in place (same parameters and hooks)."""
    linear.__class__ = BfloatLinear
    linear.gelu = gelu
    linear._bfloat = None
    return linear


def is_exact_gelu(module: torch.nn.Module) -> bool:
    """transformers' `gelu` activation computed by torch (erf, not a tanh approximation)."""
    return (isinstance(module, GELUActivation)
            and getattr(module, "act", None) is torch.nn.functional.gelu)


def prepare(model: torch.nn.Module) -> None:
    """Every BfloatLinear's bfloat16 weights made now rather than on the first bfloat16
    call (nothing without oneDNN, where they are never used)."""
    if ONEDNN:
        for module in model.modules():
            if isinstance(module, BfloatLinear):
                module._bfloat_weights()


def install(model: torch.nn.Module) -> torch.nn.Module:
    """Every linear layer of `model` as a BfloatLinear; in each feed-forward block whose
    activation is the exact GELU, the GELU moved into its first layer (the block's own
    activation becomes the identity)."""
    for module in list(model.modules()):
        for linear_name, activation_name in FEED_FORWARDS:
            linear = getattr(module, linear_name, None)
            activation = getattr(module, activation_name, None)
            if (type(linear) is torch.nn.Linear and activation is not None
                    and is_exact_gelu(activation)):
                fuse(linear, gelu=True)
                setattr(module, activation_name, torch.nn.Identity())
    for module in list(model.modules()):
        if type(module) is torch.nn.Linear:
            fuse(module, gelu=False)
    return model

"""The HuBERT-graph models' convolutional feature encoder (7 convolutions over the raw
waveform), computed time-major with the loaded model's own weights: the same function as
transformers' `HubertFeatureEncoder`/`Wav2Vec2FeatureEncoder`, faster on a CPU (MERT-95M,
8 windows in bf16 inside the whole model: 2.1-2.3 -> 1.7-1.8 s; bench/RESULTS.md).

Why: that encoder is a third of MERT-v1-95M's time and a seventh of the large models',
and transformers runs it channel-major, (batch, 512, frames), where oneDNN's 1-D
convolutions reach ~60 % of the matrix-product rate and every layer norm transposes its
input to (frames, 512) and back. Kept time-major, (batch, frames, 512):

* the first convolution (1 input channel, kernel 10, stride 5) is one matrix product of
  the waveform's strided frames, a view, with the (10, 512) kernel (0.17 -> 0.07 s per 4
  windows of 10.25 s);
* the others are 2-D convolutions over a (batch, 512, 1, frames) channels-last view of
  the same memory, oneDNN's fast layout (0.53 -> 0.37 s per layer at 4 windows);
* layer norms normalise the last axis as they stand;
* the `group` variant's group norm (one group per channel, over frames, first layer only)
  is folded into the first convolution: a channel's mean and variance over frames follow
  exactly from the frames' own mean and 10x10 second moments, so each window's norm
  becomes a scaled kernel and a shift of the one matrix product (a mean and variance over
  frames of the time-major output would take ~1 s per 4 windows: strided reductions).

Norms and activations keep transformers' precision under autocast (norms in float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TimeMajorFeatureEncoder(nn.Module):
    """A drop-in for transformers' feature encoder of a HuBERT/wav2vec2 model: the same
    `forward(input_values) -> (batch, channels, frames)` (returned as a view of
    time-major memory, which the model transposes back at no cost), on the same modules."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.conv_layers = encoder.conv_layers  # the loaded modules, shared, not copied
        for index, layer in enumerate(self.conv_layers):
            norm = getattr(layer, "layer_norm", None)
            if isinstance(norm, nn.GroupNorm) and norm.num_groups != norm.num_channels:
                raise ValueError("a group norm with several channels per group is not "
                                 "HuBERT's feature encoder")
            if index:  # laid out once for `convolution`, not re-laid on every call
                self.register_buffer(f"kernel{index}", channels_last_kernel(layer.conv),
                                     persistent=False)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        x = input_values
        for index, layer in enumerate(self.conv_layers):
            norm = getattr(layer, "layer_norm", None)
            if index == 0:
                x = first_convolution(x, layer.conv, norm)
            else:
                kernel = getattr(self, f"kernel{index}")
                x = normalised(convolution(x, kernel, layer.conv), norm)
            x = layer.activation(x)
        return x.transpose(1, 2)


def first_convolution(waveform: torch.Tensor, conv: nn.Conv1d,
                      norm: nn.Module | None) -> torch.Tensor:
    """The 1-channel convolution over (batch, samples), and its norm, as a matrix product
    of the strided frames (a view) with the kernel: (batch, frames, out)."""
    batch, samples = waveform.shape
    width, stride = conv.kernel_size[0], conv.stride[0]
    frames = (samples - width) // stride + 1
    waveform = waveform.float().contiguous()
    patches = waveform.as_strided((batch, frames, width), (samples, stride, 1))
    kernel = conv.weight[:, 0].t()  # (width, out)
    bias = conv.bias if conv.bias is not None else kernel.new_zeros(kernel.shape[1])
    if isinstance(norm, nn.GroupNorm):
        kernel, shift = group_normalised_kernel(patches, kernel, bias, norm)
        return torch.baddbmm(shift[:, None, :], patches, kernel)
    return normalised(torch.addmm(bias, patches.reshape(-1, width), kernel)
                      .reshape(batch, frames, -1), norm)


def group_normalised_kernel(patches: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor,
                            norm: nn.GroupNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window, the kernel (batch, width, out) and shift (batch, out) whose product with
    the frames equals the convolution followed by the per-channel group norm over frames.

    Output channel c is y = p·k_c + b_c over frames p, so its mean is m·k_c + b_c and its
    mean square k_cᵀ S k_c + 2 b_c m·k_c + b_c², from the frames' mean m and second
    moments S. In float64 (autocast leaves it alone), as the variance is a difference of
    the two; MPS has no float64, and there the normalised waveform's near-zero mean keeps
    float32 exact enough."""
    frames = patches.shape[1]
    wide = torch.float32 if patches.device.type == "mps" else torch.float64
    p = patches.to(wide)
    mean_patch = p.mean(dim=1)  # (batch, width)
    moments = torch.bmm(p.transpose(1, 2), p) / frames  # (batch, width, width)
    k, b = kernel.to(wide), bias.to(wide)
    linear = mean_patch @ k  # (batch, out)
    mean = linear + b
    square = torch.einsum("nij,ic,jc->nc", moments, k, k) + 2 * b * linear + b * b
    variance = (square - mean * mean).clamp(min=0.0)
    scale = norm.weight.to(wide) * torch.rsqrt(variance + norm.eps)  # (batch, out)
    shift = norm.bias.to(wide) - mean * scale + b * scale
    return (k[None] * scale[:, None, :]).float(), shift.float()


def channels_last_kernel(conv: nn.Conv1d) -> torch.Tensor:
    """`conv`'s weight (out, in, kernel) as the (out, in, 1, kernel) channels-last
    kernel `convolution` passes to the 2-D convolution."""
    return conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)


def convolution(x: torch.Tensor, kernel: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """`conv` (its bias and stride, with its weight laid out as `kernel`) on time-major
    (batch, frames, in), as a 2-D convolution over the channels-last view (batch, in, 1,
    frames): (batch, frames', out), time-major."""
    view = x.transpose(1, 2).unsqueeze(2)
    out = F.conv2d(view, kernel, conv.bias, stride=(1, conv.stride[0]))
    return out.squeeze(2).transpose(1, 2)


def normalised(x: torch.Tensor, norm: nn.Module | None) -> torch.Tensor:
    """`x` (batch, frames, channels) through a layer's LayerNorm over channels, as it
    stands, if the layer has one (transformers puts a group norm on the first layer
    only: `first_convolution` folds it)."""
    return x if norm is None else norm(x)

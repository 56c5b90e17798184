"""EnCodec's SEANet encoder computed time-major with the loaded model's own weights: the
same function as transformers' `EncodecEncoder`, faster on a CPU (16 windows of 11 s in
bf16: 10.3 -> 3.0 s alone; 1.8x the tracks/s of the extractor's model-only timing;
bench/RESULTS.md).

Why: the encoder's cost is memory, not arithmetic. Its first stages hold 32-64 channels
at 24 and 12 kHz, and transformers pads every convolution's input with a reflection
(`F.pad(mode="reflect")`, ~half of its time in bfloat16: a slow kernel plus a cast) and
runs oneDNN's 1-D convolutions channel-major, their slow layout. Here activations stay
(batch, frames, channels):

* each ELU writes straight into the padded buffer its convolution reads, and the few
  reflected frames are copied from it, so padding costs no pass of its own;
* convolutions are 2-D ones over a (batch, channels, 1, frames) channels-last view of
  that memory (oneDNN's fast layout); kernel-1 convolutions are matrix products, and a
  residual block's two (the block's last and its shortcut) accumulate into one output;
* weight norm is applied once, at load, not on every call.

Only the 24 kHz model's layout runs here (causal, reflect padding, weight norm, the
published layer kinds); another layout is refused at load with the reason, so the
extractor never computes something else silently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TimeMajorEncodecEncoder(nn.Module):
    """A drop-in for transformers' `EncodecEncoder` (the 24 kHz layout): `forward(audio
    (batch, 1, samples)) -> (batch, hidden, frames)`, returned as a view of time-major
    memory. Built from the loaded encoder; ValueError when its layout is another."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        from transformers.models.encodec.modeling_encodec import (
            EncodecConv1d,
            EncodecLSTM,
            EncodecResnetBlock,
        )

        kinds, steps = [], []
        for layer in encoder.layers:
            if isinstance(layer, EncodecConv1d):
                kinds.append("conv")
                steps.append(CausalConv(layer))
            elif isinstance(layer, EncodecResnetBlock):
                kinds.append("block")
                steps.append(ResidualBlock(layer))
            elif isinstance(layer, nn.ELU) and layer.alpha == 1.0:
                kinds.append("elu")
                steps.append(nn.Identity())
            elif isinstance(layer, EncodecLSTM):
                kinds.append("lstm")
                steps.append(layer.lstm)
            else:
                raise ValueError(f"an EnCodec encoder layer {type(layer).__name__} is not "
                                 "the 24 kHz model's layout")
        self.kinds = tuple(kinds)
        self.steps = nn.ModuleList(steps)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio[:, 0, :, None]  # (batch, samples, 1): time-major
        elu_pending = False  # an ELU the next convolution applies as it pads
        for kind, step in zip(self.kinds, self.steps, strict=True):
            if kind == "elu":
                elu_pending = True
                continue
            if kind == "conv":
                x = step(x, elu=elu_pending)
            else:
                x = F.elu(x) if elu_pending else x
                if kind == "block":
                    x = step(x)
                else:  # the LSTM and its skip connection, over (frames, batch, channels)
                    sequence = x.transpose(0, 1)
                    x = (step(sequence)[0] + sequence).transpose(0, 1).contiguous()
            elu_pending = False
        return (F.elu(x) if elu_pending else x).transpose(1, 2)


class CausalConv(nn.Module):
    """One `EncodecConv1d` (causal, reflect padding, weight norm) on time-major input."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if not layer.causal or layer.pad_mode != "reflect" or layer.norm_type != "weight_norm":
            raise ValueError("an EnCodec convolution that is not causal with reflect padding "
                             "and weight norm is not the 24 kHz model's layout")
        conv = layer.conv
        with torch.no_grad():  # weight norm, applied once
            weight = conv.weight.detach().clone()
        self.stride, self.dilation = conv.stride[0], conv.dilation[0]
        self.span = (conv.kernel_size[0] - 1) * self.dilation + 1
        self.register_buffer("weight", weight.unsqueeze(2).contiguous(
            memory_format=torch.channels_last))  # (out, in, 1, kernel)
        self.register_buffer("bias", conv.bias.detach().clone())

    def padding(self, frames: int) -> tuple[int, int]:
        """(left, right) as `EncodecConv1d` pads: the kernel's span less the stride on
        the left, and on the right what makes the last window whole."""
        left = self.span - self.stride
        windows = -(-(frames - self.span + left) // self.stride) + 1  # ceil, then + 1
        return left, (windows - 1) * self.stride + self.span - left - frames

    def forward(self, x: torch.Tensor, elu: bool = False) -> torch.Tensor:
        """x (batch, frames, in) -> (batch, frames', out); `elu` applies the ELU before."""
        left, right = self.padding(x.shape[1])
        x = reflect_padded(x, left, right, elu)
        if self.span == 1 and self.stride == 1:
            return pointwise(x, self.weight, self.bias)
        view = x.transpose(1, 2).unsqueeze(2)  # channels-last (batch, in, 1, frames)
        out = F.conv2d(view, self.weight, self.bias, stride=(1, self.stride),
                       dilation=(1, self.dilation))
        return out.squeeze(2).transpose(1, 2)


class ResidualBlock(nn.Module):
    """An `EncodecResnetBlock` (ELU, conv, ELU, kernel-1 conv; plus a kernel-1 shortcut
    conv of its input) on time-major input: both kernel-1 convs add into one output."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        layers = list(block.block)
        if (len(layers) != 4 or not all(isinstance(layers[i], nn.ELU) for i in (0, 2))
                or isinstance(block.shortcut, nn.Identity)):
            raise ValueError("an EnCodec residual block not of ELU, conv, ELU, conv with a "
                             "shortcut conv is not the 24 kHz model's layout")
        self.first, self.last = CausalConv(layers[1]), CausalConv(layers[3])
        self.shortcut = CausalConv(block.shortcut)
        if self.last.span != 1 or self.shortcut.span != 1:
            raise ValueError("an EnCodec residual block whose last or shortcut convolution "
                             "is wider than 1 is not the 24 kHz model's layout")
        # both kernel-1 convs' biases land in the one output
        self.register_buffer("bias", self.shortcut.bias + self.last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.elu(self.first(x, elu=True), inplace=True)
        out = pointwise(x, self.shortcut.weight, self.bias)
        batch, frames, channels = out.shape
        out2d = out.view(batch * frames, channels)
        hidden2d = hidden.reshape(batch * frames, -1)
        out2d.addmm_(hidden2d, self.last.weight[:, :, 0, 0].t().to(out.dtype))
        return out


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A kernel-1 convolution of time-major x as one matrix product: (batch, frames, out)."""
    batch, frames, channels = x.shape
    out = torch.addmm(bias, x.reshape(batch * frames, channels), weight[:, :, 0, 0].t())
    return out.view(batch, frames, -1)


def reflect_padded(x: torch.Tensor, left: int, right: int, elu: bool) -> torch.Tensor:
    """Time-major x (batch, frames, channels), ELU'd if `elu`, with `left`/`right` frames
    of reflection around it, as `F.pad(mode="reflect")` pads (an ELU of a reflection is
    the reflection of the ELU). The ELU writes into the padded buffer; an input no longer
    than the padding takes transformers' own route (zeros first, then the reflection)."""
    frames = x.shape[1]
    if left == right == 0:
        return F.elu(x) if elu else x
    if frames <= max(left, right):
        x = F.elu(x) if elu else x
        extra = max(left, right) - frames + 1
        padded = F.pad(F.pad(x.transpose(1, 2), (0, extra)), (left, right), mode="reflect")
        return padded[..., :padded.shape[-1] - extra].transpose(1, 2).contiguous()
    batch, _, channels = x.shape
    out = x.new_empty(batch, left + frames + right, channels)
    body = out[:, left:left + frames]
    if elu:
        torch.ops.aten.elu.out(x, out=body)  # the ELU written in place: no pass of its own
    else:
        body.copy_(x)
    if left:
        out[:, :left] = body[:, 1:left + 1].flip(1)
    if right:
        out[:, left + frames:] = body[:, frames - right - 1:frames - 1].flip(1)
    return out

"""CNN14 of PANNs in PyTorch, loading the official checkpoints (`Cnn14_mAP=0.431.pth`,
`Cnn14_16k_mAP=0.438.pth`: a dict whose `model` entry is the state dict).

The front end is the published recipe, computed with `torch.stft` instead of the
reference's convolution with a DFT matrix (the same numbers, at a fraction of the cost):
periodic Hann window, centred frames with reflect padding, power spectrum, librosa's
Slaney mel filters between fmin and fmax (`mel.mel_filterbank`), 10·log10 clamped at 1e-10
(ref 1, no top_db). The checkpoint's own front-end tensors (the DFT kernels and `melW`,
frozen during training) are checked for shape and not used. Learned layers keep the
official names, so the state dict loads as saved.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.checkpoint_files import check_tensors, read_checkpoint
from mfs.extractors.mel import mel_filterbank
from mfs.extractors.panns.extractor import FRONT_ENDS, N_CLASSES, FrontEnd

WIDTHS = (64, 128, 256, 512, 1024, 2048)
# Tensors of the official state dict that hold the fixed front end, not learned weights.
FRONT_END_KEYS = ("spectrogram_extractor.stft.conv_real.weight",
                  "spectrogram_extractor.stft.conv_imag.weight", "logmel_extractor.melW")
# Time frames the six blocks need: five 2x2 average pools leave at least one.
MIN_FRAMES = 32


class LogMel(nn.Module):
    """Windows (batch, samples) -> log-mel (batch, 1, frames, mel bins), in float32."""

    def __init__(self, front: FrontEnd) -> None:
        super().__init__()
        self.front = front
        self.register_buffer("window", torch.hann_window(front.n_fft, periodic=True))
        bank = mel_filterbank(float(front.sample_rate), front.n_fft, front.mel_bins,
                              front.fmin, front.fmax)
        self.register_buffer("filterbank", torch.tensor(bank.T.copy()))  # (bins, mels)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(windows, self.front.n_fft, self.front.hop, window=self.window,
                              center=True, pad_mode="reflect", return_complex=True)
        power = torch.view_as_real(spectrum).square().sum(-1).transpose(1, 2)
        mel = power @ self.filterbank
        return (10.0 * torch.log10(mel.clamp(min=1e-10)))[:, None]


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU, then a 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool > 1 else x


class FoldedConvBlock(nn.Module):
    """A `ConvBlock` for inference, as fast as this CPU runs it: each batch norm folded into
    its convolution (weights scaled, a bias added: one pass over the activations fewer, and
    twice that in bfloat16, where those passes weigh double against the faster convs).

    A block whose input is 2 mel bins wide (block 6 of CNN14: 64 bins after five 2x2 pools)
    runs its 3x3 convolutions as one matrix product over time instead: with zero padding
    over a width of 2 a third of a 3x3 kernel's products fall on padding, and oneDNN runs
    such a narrow, deep convolution at a fraction of its matrix-product rate. Each output
    column reads both input columns, so (3 rows x 2 columns x in) -> (2 columns x out) is
    one dense matrix: 2/3 of the products, all useful, at the matrix-product rate
    (block 6: 0.64 -> 0.27 s per 16 windows in bfloat16; bench/RESULTS.md).
    """

    def __init__(self, block: ConvBlock, width: int) -> None:
        super().__init__()
        self.narrow = width == 2
        for index, (conv, norm) in enumerate(((block.conv1, block.bn1),
                                              (block.conv2, block.bn2)), start=1):
            weight, bias = fold_batch_norm(conv.weight, norm)
            if self.narrow:
                weight = two_column_matrix(weight)
                bias = bias.repeat(2)
            self.register_buffer(f"weight{index}", weight)
            self.register_buffer(f"bias{index}", bias)

    def convolve(self, x: torch.Tensor, index: int) -> torch.Tensor:
        weight, bias = getattr(self, f"weight{index}"), getattr(self, f"bias{index}")
        if not self.narrow:
            return F.conv2d(x, weight, bias, padding=1)
        batch, channels, frames, width = x.shape
        rows = F.pad(x.permute(0, 2, 3, 1).reshape(batch, frames, width * channels),
                     (0, 0, 1, 1))  # (batch, frames + 2, columns x channels), time padded
        patches = rows.unfold(1, 3, 1).transpose(2, 3).reshape(batch * frames, -1)
        y = torch.addmm(bias, patches, weight)  # (batch x frames, columns x out)
        return y.reshape(batch, frames, width, -1).permute(0, 3, 1, 2)  # channels-last

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu_(self.convolve(x, 1))
        x = F.relu_(self.convolve(x, 2))
        return F.avg_pool2d(x, pool) if pool > 1 else x


def fold_batch_norm(weight: torch.Tensor,
                    norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of a convolution followed by `norm` (inference statistics),
    computed in float64 so the fold adds no rounding of its own."""
    scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
    folded = weight.double() * scale[:, None, None, None]
    bias = norm.bias.double() - norm.running_mean.double() * scale
    return (folded.float().contiguous(memory_format=torch.channels_last), bias.float())


def two_column_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel (out, in, 3, 3) over an input 2 columns wide with zero padding, as one
    matrix (3 rows x 2 input columns x in, 2 output columns x out): output column `o`
    reads input column `i` through kernel column `i - o + 1`."""
    out_channels, in_channels = weight.shape[:2]
    matrix = weight.new_zeros(3, 2, in_channels, 2, out_channels)
    for column_out in range(2):
        for column_in in range(2):
            matrix[:, column_in, :, column_out] = (
                weight[:, :, :, column_in - column_out + 1].permute(2, 1, 0))
    return matrix.reshape(3 * 2 * in_channels, 2 * out_channels)


class Cnn14(nn.Module):
    """Waveform windows -> (embedding (batch, widths[-1]), clip-wise probabilities).

    `widths` are the six blocks' channels (the official model's by default; the tests
    build narrower ones). Inference only: no dropout, SpecAugment or mixup.
    """

    def __init__(self, front: FrontEnd, widths: tuple[int, ...] = WIDTHS,
                 classes: int = N_CLASSES) -> None:
        super().__init__()
        self.log_mel = LogMel(front)
        self.bn0 = nn.BatchNorm2d(front.mel_bins)
        channels = (1, *widths)
        for index in range(6):
            setattr(self, f"conv_block{index + 1}", ConvBlock(channels[index], channels[index + 1]))
        self.fc1 = nn.Linear(widths[-1], widths[-1])
        self.fc_audioset = nn.Linear(widths[-1], classes)

    def fold_for_inference(self) -> Cnn14:
        """Replace each conv block by its `FoldedConvBlock` (after the weights are loaded:
        the state dict keeps the official names only until then)."""
        width = self.log_mel.front.mel_bins
        for index in range(6):
            name = f"conv_block{index + 1}"
            setattr(self, name, FoldedConvBlock(getattr(self, name), width))
            width //= 2 if index < 5 else 1
        return self

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The log-mel stays in float32 under autocast: its dB values span ~200.
        with torch.autocast(windows.device.type, enabled=False):
            x = self.log_mel(windows.float())
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # batch norm over mel bins
        # channels-last, as `load_cnn14` stores the conv weights: oneDNN's convolutions
        # then skip a reorder of each activation to and from their blocked layout
        x = x.contiguous(memory_format=torch.channels_last)
        for index in range(6):
            x = getattr(self, f"conv_block{index + 1}")(x, 2 if index < 5 else 1)
        x = x.mean(dim=3)  # over frequency
        x = x.amax(dim=2) + x.mean(dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        return embedding, torch.sigmoid(self.fc_audioset(embedding))


def official_shapes(front: FrontEnd, widths: tuple[int, ...] = WIDTHS,
                    classes: int = N_CLASSES) -> dict[str, tuple[int, ...]]:
    """Every tensor of an official checkpoint's state dict and its shape."""
    bins = front.n_fft // 2 + 1
    with torch.device("meta"):  # shapes only: no 80M weights to allocate and initialise
        net = Cnn14(front, widths, classes)
    shapes = {key: tuple(value.shape) for key, value in net.state_dict().items()
              if not key.startswith("log_mel.")}
    shapes[FRONT_END_KEYS[0]] = shapes[FRONT_END_KEYS[1]] = (bins, 1, front.n_fft)
    shapes[FRONT_END_KEYS[2]] = (bins, front.mel_bins)
    return shapes


def load_cnn14(path: Path, sample_rate: int) -> Cnn14:
    """CNN14 with the weights of checkpoint `path` (its `model` entry), for inference;
    ExtractorUnavailable in one line when the file is not such a checkpoint."""
    front = FRONT_ENDS[sample_rate]
    saved = read_checkpoint(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise ExtractorUnavailable(f"{path}: not a PANNs checkpoint (expected a dict with "
                                   f"the state dict under 'model')")
    state = saved["model"]
    check_tensors(path, f"CNN14 {sample_rate // 1000} kHz", state, official_shapes(front))
    with torch.device("meta"):  # the checkpoint's tensors are assigned, not copied
        net = Cnn14(front)
    net.log_mel = LogMel(front)
    learned = {key: torch.tensor(0) for key in net.state_dict()
               if key.endswith("num_batches_tracked")}
    learned |= {k: v.float() for k, v in state.items() if k not in FRONT_END_KEYS}
    net.load_state_dict(learned, strict=False, assign=True)
    # channels-last: ~1.5x faster on a CPU for batches of windows; folded: ~1.4x more in
    # bfloat16 (bench/RESULTS.md, bench_cnn.py)
    return net.fold_for_inference().to(memory_format=torch.channels_last).eval()


"""VGGish in PyTorch, loading the weights of the widely used port (torchvggish's
`vggish-10086976.pth`: the state dict itself) and its PCA parameters
(`vggish_pca_params-970ea276.pth`: `pca_eigen_vectors` (128, 128), `pca_means` (128,)).

The input is the published recipe (`vggish_input.waveform_to_examples`): frames of 25 ms
every 10 ms, not centred, periodic Hann, |rfft| over 512 points, VGGish's HTK mel matrix
(`mel.htk_mel_matrix`, 125-7500 Hz, 64 bands), log(mel + 0.01), 96 frames per example.
The layers keep torchvggish's names (`features.N`, `embeddings.N`), so its file loads as
saved; the last ReLU is kept, as torchvggish has it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.checkpoint_files import check_tensors, read_checkpoint
from mfs.extractors.mel import htk_mel_matrix
from mfs.extractors.vggish.extractor import (
    EXAMPLE_FRAMES,
    FRAME_HOP,
    FRAME_LENGTH,
    SAMPLE_RATE,
)

N_FFT = 512
MEL_BANDS = 64
EMBEDDING = 128
# conv channels, "M" a 2x2 max pool: VGG configuration A's first four groups
LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


class LogMelExamples(nn.Module):
    """Windows of one example each (batch, 15 600 samples) -> (batch, 1, 96, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(FRAME_LENGTH, periodic=True))
        bank = htk_mel_matrix(float(SAMPLE_RATE), N_FFT // 2 + 1, MEL_BANDS, 125.0, 7500.0)
        self.register_buffer("mel", torch.tensor(bank, dtype=torch.float32))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        frames = windows.unfold(-1, FRAME_LENGTH, FRAME_HOP)[:, :EXAMPLE_FRAMES]
        magnitude = torch.fft.rfft(frames * self.window, N_FFT).abs()
        return torch.log(magnitude @ self.mel + 0.01)[:, None]


class VGGish(nn.Module):
    """Windows -> raw 128-d embeddings; `pca` (when loaded) gives the released ones."""

    def __init__(self) -> None:
        super().__init__()
        self.log_mel = LogMelExamples()
        layers: list[nn.Module] = []
        channels = 1
        for item in LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING), nn.ReLU(inplace=True))
        self.register_buffer("pca_matrix", torch.zeros(0))
        self.register_buffer("pca_means", torch.zeros(0))

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.autocast(windows.device.type, enabled=False):
            x = self.log_mel(windows.float())
        # channels-last, as `load_vggish` stores the conv weights: in bfloat16 oneDNN's
        # convolutions then skip reorders to and from their blocked layout (1.56x faster
        # at batch 64 on an AVX-512 BF16 CPU; no change in float32, bench/RESULTS.md)
        x = self.features(x.contiguous(memory_format=torch.channels_last))  # (b, 512, 6, 4)
        # flattened in TF's order, (time, frequency, channel), as the weights expect
        raw = self.embeddings(x.permute(0, 2, 3, 1).flatten(1))
        return raw, self.postprocess(raw) if self.pca_matrix.numel() else None

    def postprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """The released embedding: PCA with whitening, clipped to ±2, quantised to 0..255
        (kept as float, the values AudioSet's uint8 features hold)."""
        projected = (raw.float() - self.pca_means) @ self.pca_matrix.T
        return torch.round((projected.clamp(-2.0, 2.0) + 2.0) * (255.0 / 4.0))


def _shapes(module: nn.Module, prefix: str) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()
            if key.startswith(prefix)}


def load_vggish(weights: Path, pca: Path | None) -> VGGish:
    """VGGish with torchvggish's weights, and the PCA when `pca` is given; one-line
    ExtractorUnavailable when a file is not what it should be."""
    with torch.device("meta"):  # the file's tensors are assigned, not copied
        net = VGGish()
    net.log_mel = LogMelExamples()
    net.pca_matrix, net.pca_means = torch.zeros(0), torch.zeros(0)
    state = read_checkpoint(weights)
    if not isinstance(state, dict):
        raise ExtractorUnavailable(f"{weights}: not a VGGish state dict (a {type(state).__name__})")
    expected = {**_shapes(net, "features."), **_shapes(net, "embeddings.")}
    check_tensors(weights, "VGGish", state, expected)
    # not strict only for the PCA buffers, which the weights file does not hold
    net.load_state_dict({k: torch.as_tensor(v).float() for k, v in state.items()},
                        strict=False, assign=True)
    if pca is not None:
        params = read_checkpoint(pca)
        if not isinstance(params, dict):
            raise ExtractorUnavailable(f"{pca}: not VGGish PCA parameters (a dict)")
        check_tensors(pca, "VGGish PCA", params,
                      {"pca_eigen_vectors": (EMBEDDING, EMBEDDING), "pca_means": (EMBEDDING,)})
        net.pca_matrix = torch.as_tensor(params["pca_eigen_vectors"]).float()
        net.pca_means = torch.as_tensor(params["pca_means"]).float().reshape(-1)
    net.features.to(memory_format=torch.channels_last)
    return net.eval()

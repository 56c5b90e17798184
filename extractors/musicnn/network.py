"""musicnn (Pons & Serra 2019) with its published MTT / MSD weights, in PyTorch.

The `musicnn` wheel ships the trained TensorFlow 1 checkpoints, but importing the package
pulls in TensorFlow 1 and an old numpy. So only its checkpoint files are used: they are read
with `tf_checkpoint.py`, and the network and its log-mel front end are rebuilt
here, layer by layer as in musicnn's `models.py` / `extractor.py`, so that a 3 s window gives
the same tags as musicnn's own 3 s patch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfs.extractors.mel import mel_filterbank
from mfs.extractors.musicnn.extractor import HOP, SAMPLE_RATE
from mfs.extractors.musicnn.tf_checkpoint import CheckpointError, read_checkpoint

N_FFT = 512
N_MELS = 96
BN_EPS = 1e-3  # tf.layers.batch_normalization's default, not torch's 1e-5


# --- log-mel front end --------------------------------------------------------------------
class LogMel(nn.Module):
    """Waveform windows (B, samples) -> musicnn's input (B, frames, 96): log10(1 + 10000·mel).

    Frames are centred every 256 samples and only the `samples // 256` frames centred inside
    the window are kept, so a 47 872-sample window gives the 187 frames of musicnn's patch
    at the same offset. Only frame 0 lacks the 256 samples before the window that musicnn
    sees in the whole-track spectrogram; they are reflected, as librosa 0.7 (musicnn's
    release) padded, which on the reference clip keeps tags 2-3x closer to musicnn's than
    zeros do. The log is taken in float32, skipping musicnn's float16 copy of the mel (in
    float16, 10000·x overflows; the rounding itself changes tags by < 1e-5).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True))
        # librosa's default `mel` (Slaney scale, area-normalised), as musicnn built its input;
        # copied, since the filterbank is a cached array shared with fma518
        filterbank = mel_filterbank(float(SAMPLE_RATE), N_FFT, N_MELS)
        self.register_buffer("filterbank", torch.tensor(filterbank))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(windows, N_FFT, HOP, window=self.window, center=True,
                              pad_mode="reflect", return_complex=True)
        mel = self.filterbank @ spectrum.abs().square()
        frames = windows.shape[-1] // HOP
        return torch.log10(1.0 + 10000.0 * mel[..., :frames]).transpose(1, 2)


# --- the network ------------------------------------------------------------------------
class _FrontEndBlock(nn.Module):
    """One musically motivated filter shape: conv -> relu -> batch norm -> max over frequency."""

    def __init__(self, filters: int, kernel: tuple[int, int], time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Same result as `bn(relu(conv)).amax(freq)`, but pooled first: at inference batch
        norm is a per-channel affine map and ReLU is monotone, so the max over frequency of
        the normalised map is the max (min, where the scale is negative) of the raw conv,
        then ReLU and the affine map on a tensor ~60x smaller."""
        conv = self.conv(F.pad(mel, (0, 0, *self.time_pad)))
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        if bool((scale >= 0).all()):
            extreme = conv.amax(dim=3)
        else:
            extreme = torch.where((scale >= 0)[:, None], conv.amax(dim=3), conv.amin(dim=3))
        shift = self.bn.bias - self.bn.running_mean * scale
        return F.relu(extreme) * scale[:, None] + shift[:, None]


def _timbral(filters: int, mel_bands: int) -> _FrontEndBlock:
    """Filters spanning 7 frames × `mel_bands` bands (timbre); time padded 3+3 as in musicnn."""
    return _FrontEndBlock(filters, (7, mel_bands), (3, 3))


def _temporal(filters: int, frames: int) -> _FrontEndBlock:
    """Filters spanning `frames` frames × 1 band (rhythm), TF 'same' padding (extra at the end)."""
    return _FrontEndBlock(filters, (frames, 1), ((frames - 1) // 2, frames // 2))


class _MidEndLayer(nn.Module):
    """A dense 1-d conv over time: conv(7) -> relu -> batch norm."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = nn.BatchNorm1d(filters, eps=BN_EPS)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(features)))


class MusicnnNet(nn.Module):
    """musicnn's `build_musicnn` (front end '7774timbraltemporal', 64-filter mid end, 200 units).

    forward maps log-mel (B, frames, 96) to (penultimate (B, 200), logits (B, n_tags)).
    """

    def __init__(self, n_tags: int = 50, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.frontend = nn.ModuleList([
            _timbral(204, int(0.4 * N_MELS)), _timbral(204, int(0.7 * N_MELS)),
            _temporal(51, 128), _temporal(51, 64), _temporal(51, 32),
        ])
        frontend_channels = 2 * 204 + 3 * 51
        self.midend = nn.ModuleList([
            _MidEndLayer(frontend_channels, midend_filters),
            _MidEndLayer(midend_filters, midend_filters),
            _MidEndLayer(midend_filters, midend_filters),
        ])
        pooled = 2 * (frontend_channels + 3 * midend_filters)
        self.pool_bn = nn.BatchNorm1d(pooled, eps=BN_EPS)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.output = nn.Linear(backend_units, n_tags)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_bn(mel.unsqueeze(1))
        front = torch.cat([block(x) for block in self.frontend], dim=1)
        mid1 = self.midend[0](front)
        mid2 = self.midend[1](mid1) + mid1
        mid3 = self.midend[2](mid2) + mid2
        features = torch.cat([front, mid1, mid2, mid3], dim=1)
        # TF flattens (channel, [max, mean]), so the two statistics interleave per channel.
        pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return penultimate, self.output(penultimate)


# Fewest samples a window is cropped to: the STFT's reflect padding (N_FFT / 2 each side)
# needs more samples than it pads, and `LogMel` keeps `samples // HOP` frames. So only real
# audio under 32 ms is zero-padded, to two frames; the network itself takes any number of
# frames (every conv pads "same" over time, and the back end pools over all frames).
MIN_SAMPLES = N_FFT


class Musicnn(nn.Module):
    """Waveform windows -> (penultimate, logits): `LogMel` then `MusicnnNet`, one module so
    the pipeline places and casts it as a whole.

    With `lengths`, a window with fewer real samples than its length (a track shorter than
    one window, zero-padded by the pipeline) is cropped to its real samples and run alone,
    so its embedding is that of its audio: the back end's mean and max over time would
    otherwise pool the padding's frames too. Full windows run as one batch.
    """

    def __init__(self, net: MusicnnNet) -> None:
        super().__init__()
        self.log_mel = LogMel()
        self.net = net

    def _run(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The log-mel stays in float32 under autocast: 10000·mel overflows float16, and
        # bfloat16's 8-bit mantissa would round the input of every layer after it.
        with torch.autocast(windows.device.type, enabled=False):
            mel = self.log_mel(windows.float())
        return self.net(mel)

    def forward(self, windows: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        penultimate, logits = self._run(windows)
        if lengths is None:
            return penultimate, logits
        for row in (lengths < windows.shape[1]).nonzero().flatten().tolist():
            real = windows[row : row + 1, : max(int(lengths[row]), MIN_SAMPLES)]
            penultimate[row], logits[row] = (out[0] for out in self._run(real))
        return penultimate, logits


# --- checkpoint -> state dict -------------------------------------------------------------
def _tf_layer_names(net: MusicnnNet) -> dict[str, str]:
    """torch module path -> TF layer name.

    tf.layers names layers by creation order (conv2d, conv2d_1, …), so the order in which
    musicnn's `models.py` builds them is the whole mapping.
    """
    convs = [f"frontend.{i}" for i in range(len(net.frontend))]
    convs += [f"midend.{i}" for i in range(len(net.midend))]
    norms = ["input_bn", *(f"{c}.bn" for c in convs), "pool_bn", "dense_bn"]

    def numbered(base: str, i: int) -> str:
        return base if i == 0 else f"{base}_{i}"

    names = {f"{c}.conv": numbered("conv2d", i) for i, c in enumerate(convs)}
    names |= {n: numbered("batch_normalization", i) for i, n in enumerate(norms)}
    names |= {d: numbered("dense", i) for i, d in enumerate(["dense", "output"])}
    return names


_TF_PARAMS = {
    "weight": ("kernel", "gamma"), "bias": ("bias", "beta"),
    "running_mean": ("moving_mean",), "running_var": ("moving_variance",),
}


def _to_torch_layout(value: np.ndarray, shape: torch.Size) -> torch.Tensor | None:
    """Reorder a TF kernel (h, w, in, out) or dense kernel (in, out) to torch's layout;
    None when it does not fit `shape`."""
    tensor = torch.from_numpy(value)
    if tensor.ndim == 4:
        tensor = tensor.permute(3, 2, 0, 1)  # (out, in, h, w)
        if len(shape) == 3:  # mid-end: a TF conv2d spanning all channels is a torch conv1d
            tensor = tensor[:, 0].transpose(1, 2)
    elif tensor.ndim == 2:
        tensor = tensor.T
    return tensor.contiguous() if tensor.shape == shape else None


def tf_state_dict(
    net: MusicnnNet, tensors: dict[str, np.ndarray], source: Path
) -> dict[str, torch.Tensor]:
    """Build `net`'s state dict from the variables of checkpoint `source` (optimizer slots
    ignored); a missing or misshapen variable is a CheckpointError naming `source`."""
    layers = _tf_layer_names(net)
    state: dict[str, torch.Tensor] = {}
    for key, current in net.state_dict().items():
        module, param = key.rsplit(".", 1)
        if param == "num_batches_tracked":
            continue
        candidates = [f"{layers[module]}/{p}" for p in _TF_PARAMS[param]]
        tf_name = next((c for c in candidates if c in tensors), None)
        if tf_name is None:
            raise CheckpointError(f"{source}: no variable {' or '.join(candidates)} for {key}")
        tensor = _to_torch_layout(tensors[tf_name], current.shape)
        if tensor is None:
            raise CheckpointError(f"{source}: {tf_name} has shape {tensors[tf_name].shape}, "
                                  f"{key} needs {tuple(current.shape)}")
        state[key] = tensor
    return state


def load_network(index: Path, n_tags: int) -> MusicnnNet:
    """The network with the weights of the checkpoint whose `.index` file is `index`, ready
    for inference (a CheckpointError names a file that does not fit)."""
    net = MusicnnNet(n_tags=n_tags)
    net.load_state_dict(tf_state_dict(net, read_checkpoint(index), index))
    return net.eval()

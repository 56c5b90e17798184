"""Random weights for the CNN extractors (panns-cnn14, vggish) in their official file
layouts and the folder trees users keep them in, for the tests (and for anyone who needs
the registry's default configs to run without the real downloads).

The state dicts have exactly the official key names and shapes, built from the
reference-structured shapes our loaders check (full size: the loaders refuse anything
else, as they should). Values are random, batch-norm statistics included, so a test that
compares outputs compares every layer.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from mfs.extractors.panns.extractor import FRONT_ENDS, LABELS_FILE, N_CLASSES
from mfs.extractors.vggish.extractor import PCA_FILE, WEIGHTS_FILE


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """A random tensor per name: running variances positive, weights scaled by fan-in so
    activations stay in range through every layer."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("weight") and len(shape) > 1:
            fan_in = int(torch.tensor(shape[1:]).prod())
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1 + (
                1.0 if key.endswith(".weight") else 0.0)
    return state


def cnn14_state(sample_rate: int = 32000, seed: int = 0) -> dict[str, torch.Tensor]:
    """An official CNN14 state dict (32 or 16 kHz), random but for the fixed front end,
    which is the reference's own (DFT kernels and mel filters)."""
    from mfs.extractors.panns.network import FRONT_END_KEYS, official_shapes

    front = FRONT_ENDS[sample_rate]
    shapes = official_shapes(front)
    state = random_state({k: v for k, v in shapes.items() if k not in FRONT_END_KEYS}, seed)
    state.update(cnn14_front_end(sample_rate))
    return state


def cnn14_front_end(sample_rate: int) -> dict[str, torch.Tensor]:
    """The front-end tensors of an official checkpoint: windowed DFT kernels and the mel
    filters (librosa's, transposed), as torchlibrosa builds them."""
    import numpy as np

    from mfs.extractors.mel import mel_filterbank

    front = FRONT_ENDS[sample_rate]
    n = front.n_fft
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    dft = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n // 2 + 1)) / n)
    kernels = (dft * window[:, None]).T[:, None, :]
    bank = mel_filterbank(float(sample_rate), n, front.mel_bins, front.fmin, front.fmax)
    from mfs.extractors.panns.network import FRONT_END_KEYS

    return {FRONT_END_KEYS[0]: torch.tensor(kernels.real, dtype=torch.float32),
            FRONT_END_KEYS[1]: torch.tensor(kernels.imag, dtype=torch.float32),
            FRONT_END_KEYS[2]: torch.tensor(bank.T.copy())}


def write_labels(path: Path) -> Path:
    """A class_labels_indices.csv of AudioSet's shape (527 rows; names made up)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["index", "mid", "display_name"])
        for index in range(N_CLASSES):
            writer.writerow([index, f"/m/test{index:03d}", f"Class {index}, test"])
    return path


def vggish_state(seed: int = 0) -> dict[str, torch.Tensor]:
    from mfs.extractors.vggish.network import VGGish

    shapes = {k: tuple(v.shape) for k, v in VGGish().state_dict().items()
              if k.startswith(("features.", "embeddings."))}
    return random_state(shapes, seed)


def vggish_pca(seed: int = 0) -> dict:
    """PCA parameters in torchvggish's layout (numpy arrays, as the released file)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {"pca_eigen_vectors": rng.standard_normal((128, 128)).astype(np.float32) * 0.3,
            "pca_means": rng.standard_normal(128).astype(np.float32)}


def write_models_tree(root: Path, sample_rates: tuple[int, ...] = (32000,)) -> Path:
    """A `$MFS_MODELS` tree as researchers keep one: PANNs/cnn14/ (checkpoint + labels),
    VGGish/ (weights + PCA). Full size: ~320 MB for CNN14, ~290 MB for VGGish."""
    panns = root / "PANNs" / "cnn14"
    panns.mkdir(parents=True, exist_ok=True)
    for rate in sample_rates:
        torch.save({"iteration": 0, "model": cnn14_state(rate)},
                   panns / FRONT_ENDS[rate].checkpoint)
    write_labels(panns / LABELS_FILE)
    vggish = root / "VGGish"
    vggish.mkdir(parents=True, exist_ok=True)
    torch.save(vggish_state(), vggish / WEIGHTS_FILE)
    torch.save(vggish_pca(), vggish / PCA_FILE)
    return root

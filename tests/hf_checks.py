"""Checks every Hugging Face model family runs on its tiny model: real clips cut to the
lengths a test needs, the pipeline's pooled row of a file, bf16 closeness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from conftest import shared

from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_rows, load_mono
from mfs.extractors.windowing import window_samples, window_starts


def real_clip(folder: Path, seconds: float, name: str = "clip") -> Path:
    """The first `seconds` of GTZAN's full blues.00000 (30 s) as a WAV in `folder`."""
    samples, rate = sf.read(shared("gtzan-full/genres/blues/blues.00000.au"), dtype="float32")
    path = folder / f"{name}-{seconds:g}s.wav"
    sf.write(path, samples[: int(seconds * rate)], rate)
    return path


def pooled_row(extractor, path: Path) -> dict:
    """The feature row the pipeline makes of one file (extractor already loaded)."""
    [row] = extract_rows(RowBuilder(extractor, "test"), [("t", path)], batch_size=4)
    assert not isinstance(row, TrackFailure), row
    return row


def windows_of(extractor, path: Path) -> tuple[list[int], torch.Tensor, int]:
    """The window starts `window_starts` gives for the file at the extractor's rate, the
    windows themselves (real audio only, or the whole short track), and its length."""
    samples, rate = load_mono(path, extractor.sample_rate)
    window, hop = window_samples(extractor.windowing, rate)
    starts = window_starts(len(samples), window, hop)
    cut = [samples[s : s + window] for s in starts]
    return starts, torch.from_numpy(np.stack(cut)), len(samples)


def forward(extractor, windows: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        return {k: v.float().numpy() for k, v in extractor.forward(windows).items()}


def bf16_cosines(extractor, windows: torch.Tensor) -> dict[str, float]:
    """Lowest cosine of each output under bf16 autocast against float32, per window (and
    per layer, for outputs of shape (windows, layers, dim))."""
    exact = forward(extractor, windows)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = forward(extractor, windows)
    lowest = {}
    for name, a in exact.items():
        a, b = a.reshape(-1, a.shape[-1]), fast[name].reshape(-1, a.shape[-1])
        cosines = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        lowest[name] = float(cosines.min())
    return lowest

"""Embedding windows cut short on their real audio alone, for every extractor that takes
`lengths` (`Extractor.uses_lengths`).

A track shorter than one window reaches `embed` zero-padded to the window's length. A
model that pools over time (a mean, a max, a group norm) would count the padding as
audio, so such a window is run alone on its real samples; full windows still run as one
batch. torch is imported by the caller, never here at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Forward = Callable[["torch.Tensor"], dict[str, "torch.Tensor"]]


def embed_real_samples(forward: Forward, windows: torch.Tensor, lengths: torch.Tensor | None,
                       min_samples: int = 1) -> dict[str, torch.Tensor]:
    """`forward` over `windows` (batch, samples), each window with fewer than `samples`
    real samples run alone on its first `max(length, min_samples)` samples (`min_samples`:
    the fewest the model takes; only audio shorter than that keeps some padding). The
    outputs come back in the windows' order."""
    import torch

    size = windows.shape[1]
    if lengths is None or bool((lengths >= size).all()):
        return forward(windows)
    parts = []
    full = (lengths >= size).nonzero().flatten().tolist()
    if full:
        parts.append((full, forward(windows[full])))
    for row in (lengths < size).nonzero().flatten().tolist():
        real = min(max(int(lengths[row]), min_samples), size)
        parts.append(([row], forward(windows[row : row + 1, :real])))
    order = torch.tensor([row for rows, _ in parts for row in rows])
    inverse = torch.argsort(order).to(windows.device)
    return {name: torch.cat([out[name] for _, out in parts])[inverse] for name in parts[0][1]}

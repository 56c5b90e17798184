"""Device choice: the fastest accelerator present unless the user names one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`auto`/None → CUDA, else MPS, else CPU; otherwise the named device, checked."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {requested}: MPS is not available on this machine")
    return device


@contextmanager
def torch_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch intra-op threads on the CPU, then restore."""
    before = torch.get_num_threads()
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

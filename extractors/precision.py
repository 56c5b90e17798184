"""The float type a model runs under: `NeuralConfig.precision` resolved for a device, and
the autocast context the pipeline runs `embed` in.

`auto` picks bfloat16 only where the hardware computes it natively (CUDA compute
capability 8.0 and up; x86 CPUs with AVX-512 BF16 or AMX), where it is faster at about the
same tags; elsewhere bfloat16 is emulated and slower than float32, so `auto` keeps float32
(measured on an AVX2-only CPU, musicnn at batch 16 on one thread: 2.5 s in float32, 30.5 s
in bfloat16, all of it in torch's fallback `_slow_conv2d_forward`).
"""

from __future__ import annotations

import contextlib
import platform
from contextlib import AbstractContextManager
from functools import cache
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 on x86


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty off Linux, or when unreadable)."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively (not emulated through float32)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """`requested` (a `PRECISIONS` value) as the float type to run on `device`; a
    ValueError in one line for float16 off CUDA (CPU autocast in float16 is slow and
    MPS's incomplete, so it is refused rather than run badly)."""
    if requested == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    if requested == "float16" and device.type != "cuda":
        raise ValueError(f"precision=float16 runs only on CUDA, not on {device.type}; "
                         "use bfloat16 or float32")
    return requested


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The context a model call runs in: autocast to `precision`'s dtype, or nothing for
    float32 and for extractors without a model (`none`), so their numbers stay bit for bit."""
    if precision not in ("bfloat16", "float16"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])

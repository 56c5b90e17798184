"""The attention every transformers model of ours runs: `_attention.c`'s bfloat16 kernel
where it applies, transformers' own SDPA everywhere else.

Why: on a CPU with AVX-512 BF16, torch's attention kernel runs no faster in bfloat16 than
in float32 (~145 GFLOP/s at AST's 1,214 tokens), so attention, 21 % of AST's FLOPs, took
~40 % of its bfloat16 time; `_attention.c` runs the same shape at ~330 GFLOP/s. The
kernel applies to what the pipeline runs under bfloat16 autocast on such a CPU: bfloat16
inputs of head size 64, no mask, no dropout, nothing that needs gradients. Anything
else (float32, CUDA, padding masks, other head sizes, another CPU) goes to
`sdpa_attention_forward` unchanged.

Registered with transformers' `AttentionInterface` as `mfs_sdpa`, the name
`loading.model_config` gives every config it builds.
"""

from __future__ import annotations

import ctypes

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from mfs.extractors.hf import _attention
from mfs.extractors.hf.kernel_threads import run_ranges

NAME = "mfs_sdpa"
HEAD_SIZE = 64  # DIM in _attention.c

_POINTER = ctypes.c_void_p
_INT = ctypes.c_int64
LIB = ctypes.CDLL(_attention.__file__)
LIB.attention_supported.restype = _INT
LIB.attention_supported.argtypes = []
LIB.attention_bf16.restype = _INT
LIB.attention_bf16.argtypes = [
    _POINTER, _POINTER, _INT,  # queries, their strides, query tokens
    _POINTER, _POINTER, _POINTER, _POINTER, _INT,  # keys, strides, values, strides, key tokens
    _POINTER, _POINTER, _INT, ctypes.c_float,  # output, strides, heads, scale
    _INT, _INT,  # first and last (window, head) item
]
SUPPORTED = bool(LIB.attention_supported())


def kernel_applies(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, dropout: float,
                   is_causal: bool | None, **kwargs: object) -> bool:
    """Whether this call is one `_attention.c` computes exactly as asked."""
    tensors = (query, key, value)
    return (SUPPORTED and attention_mask is None and not dropout and not is_causal
            and kwargs.get("position_bias") is None and kwargs.get("softcap") is None
            and not kwargs.get("output_attentions")
            and all(t.device.type == "cpu" and t.dtype == torch.bfloat16 for t in tensors)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and query.shape[-1] == HEAD_SIZE and key.shape[-1] == HEAD_SIZE
            and query.shape[:2] == key.shape[:2] and key.shape == value.shape
            and query.shape[2] > 0 and key.shape[2] > 0)


def attention_bf16(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """softmax(Q Kᵀ · scale) V for (windows, heads, tokens, 64) bfloat16 inputs, as
    (windows, query tokens, heads, 64), the layout the models reshape to their hidden
    size; computed by `torch.get_num_threads()` threads, each on its share of the
    (window, head) pairs."""
    query, key, value = (t if t.stride(-1) == 1 else t.contiguous() for t in (query, key, value))
    windows, heads, tokens_q, _ = query.shape
    out = torch.empty(windows, tokens_q, heads, HEAD_SIZE, dtype=torch.bfloat16)
    strides = [torch.tensor(t.stride()[:3], dtype=torch.int64) for t in (query, key, value)]
    out_strides = torch.tensor((out.stride(0), out.stride(2), out.stride(1)), dtype=torch.int64)

    def run(first: int, last: int) -> int:
        return LIB.attention_bf16(
            query.data_ptr(), strides[0].data_ptr(), tokens_q,
            key.data_ptr(), strides[1].data_ptr(), value.data_ptr(), strides[2].data_ptr(),
            key.shape[2], out.data_ptr(), out_strides.data_ptr(), heads, scale, first, last)

    if any(run_ranges(run, windows * heads)):
        raise MemoryError(f"bfloat16 attention: no scratch memory for {key.shape[2]} tokens")
    return out


def mfs_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
             value: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float = 0.0,
             scaling: float | None = None, is_causal: bool | None = None,
             **kwargs: object) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: our kernel when it applies, else
    `sdpa_attention_forward` with the same arguments."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", False)
    if kernel_applies(query, key, value, attention_mask, dropout, causal, **kwargs):
        scale = scaling if scaling is not None else HEAD_SIZE ** -0.5
        return attention_bf16(query, key, value, scale), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, is_causal=is_causal, **kwargs)


AttentionInterface.register(NAME, mfs_sdpa)

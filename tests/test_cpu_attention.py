"""`cpu_attention`: the bfloat16 attention kernel (`_attention.c`) against torch's own
attention, its fallback to transformers' SDPA wherever it does not apply, and a model
loaded through the product's path running through it."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F
from conftest import shared
from hf_checks import bf16_cosines
from tiny_hubert import save_hubert
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from mfs.extractors import registry
from mfs.extractors.hf import cpu_attention

pytestmark = pytest.mark.usefixtures("hf_offline")
needs_kernel = pytest.mark.skipif(not cpu_attention.SUPPORTED,
                                  reason="this CPU has no AVX-512 BF16: the kernel never runs "
                                         "here and every call goes to torch's SDPA")


def heads_view(windows: int, heads: int, tokens: int, seed: int) -> torch.Tensor:
    """(windows, heads, tokens, 64) bfloat16 as the models pass it: a transposed view of
    (windows, tokens, heads, 64), values of a trained model's scale."""
    generator = torch.Generator().manual_seed(seed)
    x = 1.5 * torch.randn(windows, tokens, heads, 64, generator=generator)
    return x.to(torch.bfloat16).transpose(1, 2)


@needs_kernel
@pytest.mark.parametrize(("windows", "heads", "tokens_q", "tokens_k"), [
    (1, 1, 1, 1), (2, 3, 37, 37), (1, 2, 5, 70), (2, 2, 70, 5), (1, 12, 1214, 1214)])
def test_kernel_equals_torch_attention_to_bfloat16_rounding(windows: int, heads: int,
                                                            tokens_q: int, tokens_k: int) -> None:
    q = heads_view(windows, heads, tokens_q, 0)
    k, v = heads_view(windows, heads, tokens_k, 1), heads_view(windows, heads, tokens_k, 2)
    exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).transpose(1, 2)
    torch_bf16 = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).float()
    ours = cpu_attention.attention_bf16(q, k, v, 64 ** -0.5)
    assert ours.shape == (windows, tokens_q, heads, 64) and ours.dtype == torch.bfloat16
    error, torch_error = (ours.float() - exact).abs().max(), (torch_bf16 - exact).abs().max()
    assert error <= 1.5 * torch_error + 1e-3, (error, torch_error)
    cosine = F.cosine_similarity(ours.float().flatten(2), exact.flatten(2), dim=-1)
    assert cosine.min() > 0.9999


@needs_kernel
def test_threads_split_the_heads_without_changing_a_bit() -> None:
    q, k, v = (heads_view(3, 5, 100, seed) for seed in range(3))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = cpu_attention.attention_bf16(q, k, v, 0.1)
        torch.set_num_threads(2)
        split = cpu_attention.attention_bf16(q, k, v, 0.1)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(alone, split)


def _attend_in_child(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     expected: torch.Tensor) -> None:
    torch.set_num_threads(2)
    os._exit(0 if torch.equal(cpu_attention.attention_bf16(q, k, v, 0.1), expected) else 1)


@needs_kernel
def test_a_forked_worker_gets_threads_of_its_own() -> None:
    """A Dask or multiprocessing worker forked after the parent ran the kernel inherits
    the parent's thread pools without their threads: it must make its own, not wait."""
    q, k, v = (heads_view(2, 4, 50, seed) for seed in range(3))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        expected = cpu_attention.attention_bf16(q, k, v, 0.1)  # the parent's pool exists
    finally:
        torch.set_num_threads(before)
    time.sleep(0.5)  # the parent's workers idle, waiting for work, as between two batches
    child = multiprocessing.get_context("fork").Process(target=_attend_in_child,
                                                        args=(q, k, v, expected))
    child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked worker hung on the parent's thread pool")
    assert child.exitcode == 0


@pytest.mark.parametrize("case", ["float32", "mask", "head size 32", "gradients"])
def test_calls_the_kernel_does_not_compute_go_to_sdpa(case: str) -> None:
    q, k, v = (heads_view(2, 2, 20, seed) for seed in range(3))
    mask = None
    if case == "float32":
        q, k, v = q.float(), k.float(), v.float()
    elif case == "mask":
        mask = torch.zeros(2, 1, 20, 20, dtype=torch.bfloat16)
        mask[..., 15:] = float("-inf")
    elif case == "head size 32":
        q, k, v = q[..., :32], k[..., :32], v[..., :32]
    else:
        q = q.clone().requires_grad_()
    module = torch.nn.Module()
    module.is_causal = False
    assert not cpu_attention.kernel_applies(q, k, v, mask, 0.0, False)
    ours, _ = cpu_attention.mfs_sdpa(module, q, k, v, mask, scaling=0.2)
    expected, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.2)
    assert torch.equal(ours, expected)


def save_with_heads_of_64(name: str, folder: Path) -> None:
    """A tiny model of family `name` whose heads have the real models' size (64), so the
    kernel runs: AST, or HuBERT-large (the graph MERT and wav2vec2 share)."""
    if name == "hubert-large":
        save_hubert(folder, stable_layer_norm=True, hidden_size=128, num_attention_heads=2,
                    intermediate_size=256)
        return
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(0)
    config = ASTConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=256, num_labels=5)
    ASTForAudioClassification(config).eval().save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)


@needs_kernel
@pytest.mark.parametrize(("name", "tokens"), [("ast", 1214), ("hubert-large", 511)])
def test_an_extractor_under_bfloat16_runs_through_the_kernel(
        name: str, tokens: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The extractor as the CLI builds it (`NAME:model_path=DIR`, precision auto): its
    attention calls go to the kernel under bfloat16, and its outputs keep cosine ≥ 0.99
    to float32 (where every call goes to SDPA) on a real clip's 10.24 s."""
    save_with_heads_of_64(name, tmp_path / name)
    samples, rate = sf.read(shared("gtzan-excerpts/genres/jazz/jazz.00001.flac"),
                            dtype="float32")
    window = soxr.resample(samples, rate, 16000).astype(np.float32)[:163840]
    extractor = registry.create_from_spec(f"{name}:model_path={tmp_path / name}")
    extractor.load(torch.device("cpu"))
    calls = []
    kernel = cpu_attention.attention_bf16
    monkeypatch.setattr(cpu_attention, "attention_bf16",
                        lambda *args: calls.append(args[0].shape) or kernel(*args))
    cosines = bf16_cosines(extractor, torch.from_numpy(window)[None])
    assert calls == [(1, 2, tokens, 64)] * 2  # both layers, under bfloat16 only
    assert min(cosines.values()) >= 0.99, cosines

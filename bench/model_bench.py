"""What the model benches share (bench_transformers.py, bench_cnn.py): this machine's
matrix-product rate, a model's FLOPs per window, and the two timed ways of running a
registered extractor over real 30 s tracks (its `embed` alone over windows cut
beforehand; the whole `run_extract` pipeline into a fresh store)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_extract import LIBRARY, Timing, timed, tracks_table  # noqa: E402

from mfs.audio.decode import probe  # noqa: E402
from mfs.extractors.device import torch_threads  # noqa: E402
from mfs.extractors.pipeline import load_mono  # noqa: E402
from mfs.extractors.precision import autocast  # noqa: E402
from mfs.extractors.windowing import cut_windows  # noqa: E402
from mfs.flows.extract import ExtractSettings, run_extract  # noqa: E402
from mfs.store import Store  # noqa: E402

GTZAN_FULL = BENCH.parents[1] / "shared" / "data" / "gtzan-full" / "genres"


def full_clips(count: int) -> list[Path]:
    """The first `count` of the ten full 30 s GTZAN tracks (one per genre)."""
    if not GTZAN_FULL.is_dir():
        raise SystemExit(f"real tracks not found at {GTZAN_FULL} (see shared/data/README.md)")
    return sorted(GTZAN_FULL.glob("*/*.au"))[:count]


# --- machine rates ----------------------------------------------------------------------
def machine_rates() -> dict[str, tuple[float, float]]:
    """`matmul_rate` in float32 and bfloat16, printed with torch's threads and the load
    average, as both model benches start."""
    rates = {"float32": matmul_rate(torch.float32), "bfloat16": matmul_rate(torch.bfloat16)}
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    for dtype, (wall, cpu) in rates.items():
        print(f"torch.mm {dtype}: {wall:.1f} GFLOP/s wall, {cpu:.1f} GFLOP per CPU s")
    return rates


def matmul_rate(dtype: torch.dtype, seconds: float = 2.0) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per CPU second) of square `torch.mm` in `dtype`, best
    call of a loop of about `seconds`, with torch's default threads. The size is picked so
    one call takes ~0.3 s, up to 2048: emulated bfloat16 is ~40x slower than float32 here
    and a 2048 product would take minutes."""
    size = 256
    while size < 2048:
        a = torch.randn(size, size, dtype=dtype)
        with timed() as probe_time:
            torch.mm(a, a)
        if probe_time[0].wall * 8 > 0.3:
            break
        size *= 2
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    walls, cpus, started = [], [], time.perf_counter()
    while time.perf_counter() - started < seconds or len(walls) < 3:
        with timed() as timing:
            torch.mm(a, b)
        walls.append(timing[0].wall)
        cpus.append(timing[0].cpu)
    flop = 2 * size**3
    return flop / min(walls) / 1e9, flop / min(cpus) / 1e9


def _lstm_flops(module: torch.nn.LSTM, args: tuple, counts: list[int]) -> None:
    """Multiply-adds of an LSTM call as 2 FLOPs each (4 gates, input and hidden products),
    which FlopCounterMode misses: the CPU runs it as one mkldnn op without a formula."""
    x = args[0]
    steps_batch = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
    hidden = module.hidden_size
    total, width = 0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * 4 * hidden * (width + hidden) * steps_batch
        width = hidden
    counts.append(total * (2 if module.bidirectional else 1))


@register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu)
def _cpu_attention_flops(query_shape: tuple, key_shape: tuple, value_shape: tuple,
                         *args: object, out_shape: object = None, **kwargs: object) -> int:
    """QKᵀ and PV of torch's CPU attention kernel, which FlopCounterMode counts as 0 (it
    has formulas for the CUDA kernels only): without it the transformers' rates left
    attention out (MERT-v1-330M: 553 of 611 GFLOP per window counted)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def window_flops(extractor: object, window: np.ndarray) -> int:
    """The model's FLOPs for one window as the extractor runs it (float32)."""
    lstm: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda m, a: _lstm_flops(m, a, lstm))
             for m in extractor.model.modules() if isinstance(m, torch.nn.LSTM)]
    try:
        # no_grad, not inference_mode: the counter then fails on weight-norm parametrized
        # convs (EnCodec's) with "no attribute 'weight'"; the FLOPs are the same.
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            extractor.embed(torch.from_numpy(window[None]), extractor.sample_rate)
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() + sum(lstm)


# --- the extractor's two timed ways through the tracks --------------------------------
def model_only(extractor: object, clips: list[Path], batch_size: int) -> tuple[Timing, int]:
    """`embed` over every window of `clips`, cut beforehand, batched as the pipeline
    batches them, under the extractor's precision; (timing, windows)."""
    rate = extractor.sample_rate
    windows = np.concatenate([cut_windows(load_mono(c, rate)[0], rate, extractor.windowing)
                              for c in clips])
    device = torch.device("cpu")
    batches = torch.from_numpy(windows).split(batch_size)
    with (torch.inference_mode(), autocast(device, extractor.precision),
          torch_threads(device, extractor.cpu_threads)):
        extractor.embed(batches[0], rate)  # warm-up: the first call of a shape is slow
        with timed() as timing:
            for batch in batches:
                extractor.embed(batch, rate)
    return timing[0], len(windows)


def window_outputs(extractor: object, clip: Path,
                   precision: str | None = None) -> dict[str, np.ndarray]:
    """Every output of `embed` on `clip`'s windows under `precision` (default: the
    extractor's), as float32 arrays (windows, dim) or (windows, layers, dim): what a
    precision's closeness to float32 is measured on."""
    rate = extractor.sample_rate
    windows = torch.from_numpy(cut_windows(load_mono(clip, rate)[0], rate, extractor.windowing))
    device = torch.device("cpu")
    with torch.inference_mode(), autocast(device, precision or extractor.precision):
        outputs = extractor.embed(windows, rate)
    return {name: value.float().numpy() for name, value in outputs.items()}


def lowest_cosine(reference: dict[str, np.ndarray],
                  other: dict[str, np.ndarray]) -> dict[str, float]:
    """Per output, the lowest cosine similarity between two precisions' vectors over
    windows (and over layers, each layer's vector compared on its own)."""
    lowest = {}
    for name, a in reference.items():
        b = other[name]
        norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
        lowest[name] = float(((a * b).sum(-1) / np.maximum(norms, 1e-12)).min())
    return lowest


def with_precision(name: str, precision: str | None) -> str:
    """The extractor spec that runs `name` under `precision` (None: its default config)."""
    return name if precision is None else f"{name}:precision={precision}"


def precisions(option: str) -> list[str | None]:
    """`--precision` of the model benches: `default` (the extractor's default config) or a
    comma list of precisions, each timed against the same baseline in the same run."""
    return [None if p == "default" else p for p in option.split(",")]


def pipeline(name: str, clips: list[Path], batch_size: int | None) -> Timing:
    """`run_extract` of spec `name` over `clips` in a fresh store: decode to Parquet, model
    load excluded (it is timed from the flow's own extraction loop)."""
    infos = [(i.duration_s, i.sample_rate, i.channels) for i in map(probe, clips)]
    paths = [str(clip.relative_to(GTZAN_FULL)) for clip in clips]
    with tempfile.TemporaryDirectory(prefix="mfs-bench-hf-") as folder:
        store = Store(folder)
        with store.writing("bench tracks") as writer:
            writer.replace_tracks(LIBRARY, tracks_table(GTZAN_FULL, paths, infos))
        with timed() as timing:
            result = run_extract(store, LIBRARY, [name], ExtractSettings(batch_size, "cpu"))
    counts = result["extractors"][name]
    if counts["ok"] != len(clips):
        raise SystemExit(f"{name}: pipeline extracted {counts['ok']} of {len(clips)}: {counts}")
    # The flow's loop time less its model load (`load_seconds`): the others are timed with
    # the model loaded too. Its store setup and planning are outside `seconds` already.
    return Timing(counts["seconds"] - counts.get("load_seconds", 0.0), timing[0].cpu)



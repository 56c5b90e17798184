"""Extraction throughput: the extract flow end to end against the extractor alone, and the
cost of a re-run that has nothing to do.

* Throughput: `run_extract` (plan, decode, window, batch, pool, write Parquet parts) over
  real GTZAN clips, against the same extractor's `embed` alone over the same windows in
  the same batch size, decoded and cut beforehand (so it is the model's time and nothing
  else). `pipeline / extractor` is the share of the model's speed the pipeline keeps; the
  target is >= 0.90. The two run back to back `--repeats` times (the pipeline on a fresh
  store each time) and the ratio is taken per pair, since on a shared machine the load
  from others drifts between pairs more than within one; the median pair is the result.
* Work: the model's FLOPs per window (counted by torch from its conv and matmul shapes)
  per CPU second, against what a float32 matmul reaches per CPU second on this machine:
  how close the extractor is to the most this CPU can do.
* Allocator (`--allocator-check`): the model's CPU seconds and page faults with glibc's
  default malloc settings and with `keep_freed_memory`, which `extract_rows` applies.
* No-op re-run: `run_extract` on a store of `--noop-tracks` synthetic tracks whose features
  are all stored (real-shaped rows, in parts of 64 as the flow writes them). It must plan
  nothing, load no model, decode nothing, and take seconds.

    .venv/bin/python bench/bench_extract.py                    # 40 clips, musicnn-mtt, batch 16
    .venv/bin/python bench/bench_extract.py --tracks 100 --repeats 3 --batch-size 32
    .venv/bin/python bench/bench_extract.py --skip-throughput  # only the no-op re-run
    .venv/bin/python bench/bench_extract.py --allocator-check --skip-throughput --skip-noop
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.flop_counter import FlopCounterMode

from mfs.audio.decode import probe
from mfs.extractors import registry
from mfs.extractors.base import Extractor
from mfs.extractors.device import torch_threads
from mfs.extractors.pipeline import RowBuilder, keep_freed_memory, load_mono
from mfs.extractors.pooling import TrackPool
from mfs.extractors.windowing import cut_windows
from mfs.flows.extract import TRACKS_PER_PART, ExtractSettings, run_extract
from mfs.store import Store, schema
from mfs.store.store import StoreWriter

GTZAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-excerpts" / "genres"
LIBRARY = "bench"


def pick_clips(count: int) -> list[Path]:
    """`count` clips taken round-robin over the genres, so every genre is represented."""
    if not GTZAN.is_dir():
        raise SystemExit(f"real clips not found at {GTZAN} (see shared/data/README.md)")
    genres = [sorted(folder.glob("*.flac")) for folder in sorted(GTZAN.iterdir())]
    clips = [clip for row in zip_longest(*genres) for clip in row if clip is not None]
    if count > len(clips):
        raise SystemExit(f"--tracks {count}: only {len(clips)} clips in {GTZAN}")
    return clips[:count]


def tracks_table(root: Path, paths: list[str], infos: list[tuple[float, int, int]]) -> pa.Table:
    """A tracks table as a scan writes it: `paths` relative to `root`, (duration, rate,
    channels) per track."""
    now = datetime.now(UTC)
    rows = [{
        "track_id": f"{LIBRARY}:{Path(path).stem}", "library": LIBRARY, "library_kind": "gtzan",
        "library_root": str(root), "path": path, "format": Path(path).suffix[1:],
        "duration_s": duration, "sample_rate": rate, "channels": channels,
        "file_size": 0, "mtime_ns": 0, "fingerprint": uuid.uuid4().hex,
        "genre": Path(path).parent.name, "genres": [Path(path).parent.name],
        "status": "ok", "scanned_at": now,
    } for path, (duration, rate, channels) in zip(paths, infos, strict=True)]
    return pa.Table.from_pylist(rows, schema=schema.TRACKS)


@dataclass(frozen=True)
class Timing:
    """Wall seconds, and CPU seconds (user + system, all threads) of the process."""

    wall: float
    cpu: float


@contextmanager
def timed() -> Iterator[list[Timing]]:
    """Times the block; the `Timing` is appended to the yielded list when it ends. CPU time
    is kept beside wall time because on a shared machine it is the steadier of the two."""
    result: list[Timing] = []
    before, started = _cpu_seconds(), time.perf_counter()
    yield result
    result.append(Timing(time.perf_counter() - started, _cpu_seconds() - before))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_pipeline(clips: list[Path], name: str, batch_size: int) -> tuple[Timing, dict]:
    """`run_extract` over `clips` in a fresh store: its timing and counts."""
    infos = [(info.duration_s, info.sample_rate, info.channels)
             for info in map(probe, clips)]
    paths = [str(clip.relative_to(GTZAN)) for clip in clips]
    with tempfile.TemporaryDirectory(prefix="mfs-bench-") as folder:
        store = Store(folder)
        with store.writing("bench tracks") as writer:
            writer.replace_tracks(LIBRARY, tracks_table(GTZAN, paths, infos))
        with timed() as timing:
            result = run_extract(store, LIBRARY, [name], ExtractSettings(batch_size, "cpu"))
    counts = result["extractors"][name]
    if counts["ok"] != len(clips):
        raise SystemExit(f"pipeline extracted {counts['ok']} of {len(clips)} clips: {counts}")
    return timing[0], counts


Windows = list[tuple[np.ndarray, int]]  # (windows, samples) arrays and their sample rate


def decoded_windows(clips: list[Path], extractor: Extractor) -> Windows:
    """Every window of every clip, decoded and cut in memory, in track order: one array of
    all windows for a fixed-window extractor (the flow batches across tracks), one per
    clip for a whole-track one such as fma518 (a track per call, as the flow runs it)."""
    cut = []
    for clip in clips:
        mono, rate = load_mono(clip, extractor.sample_rate)
        cut.append((cut_windows(mono, rate, extractor.windowing), rate))
    if extractor.windowing.seconds is None:
        return cut
    return [(np.concatenate([windows for windows, _ in cut]), cut[0][1])]


def time_extractor(extractor: Extractor, windows: Windows, batch_size: int) -> Timing:
    """`extractor.embed` alone over `windows` in batches of `batch_size`, with the torch
    thread count the flow gives it (`cpu_threads`, e.g. 1 for fma518)."""
    batches = [(batch, rate) for group, rate in windows
               for batch in torch.from_numpy(group).split(batch_size)]
    with (torch.inference_mode(), torch_threads(torch.device("cpu"), extractor.cpu_threads),
          timed() as timing):
        for batch, rate in batches:
            extractor.embed(batch, rate)
    return timing[0]


def flops_per_window(extractor: Extractor, window: np.ndarray, rate: int) -> int:
    """The model's FLOPs for one window (torch counts conv/matmul as 2 x multiply-adds)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        extractor.embed(torch.from_numpy(window[None]), rate)
    return counter.get_total_flops()


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP per CPU second of a square matmul: what this CPU's BLAS reaches.

    Per CPU second rather than per wall second, so that other work on a shared machine
    does not lower it (it does not speed a core up either).
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    cpu = []
    for _ in range(repeats):
        with timed() as timing:
            a @ b
        cpu.append(timing[0].cpu)
    return 2 * size**3 / min(cpu) / 1e9


def throughput(args: argparse.Namespace) -> None:
    keep_freed_memory()  # as extract_rows does: both sides run under the same allocator
    clips = pick_clips(args.tracks)
    extractor = registry.create(args.extractor)
    extractor.load(torch.device("cpu"))
    with timed() as decoding:
        windows = decoded_windows(clips, extractor)
    n_windows = sum(len(group) for group, _ in windows)
    (first, rate), = windows[:1]
    time_extractor(extractor, [(first[: args.batch_size], rate)], args.batch_size)  # warm-up
    model_runs, pipeline_runs = [], []
    for _ in range(args.repeats):  # back to back, so both sides of a pair share the load
        model_runs.append(time_extractor(extractor, windows, args.batch_size))
        pipeline_runs.append(time_pipeline(clips, args.extractor, args.batch_size))
    wall_ratios = [m.wall / p.wall for m, (p, _) in zip(model_runs, pipeline_runs, strict=True)]
    cpu_ratios = [m.cpu / p.cpu for m, (p, _) in zip(model_runs, pipeline_runs, strict=True)]
    model = min(model_runs, key=lambda t: t.wall)
    pipeline, counts = min(pipeline_runs, key=lambda run: run[0].wall)
    n = len(clips)
    print(f"{args.extractor}, {n} clips, {n_windows} windows, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, cpu, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"extractor alone : best {model.wall:6.2f} s  {n / model.wall:5.2f} tracks/s  "
          f"{n_windows / model.wall:5.1f} windows/s  {model.cpu:5.1f} CPU s  "
          f"runs {_runs(model_runs)}")
    print(f"run_extract     : best {pipeline.wall:6.2f} s  {n / pipeline.wall:5.2f} tracks/s  "
          f"{'':15}{pipeline.cpu:5.1f} CPU s  runs {_runs([r[0] for r in pipeline_runs])}  "
          f"(extraction loop {counts['seconds']:.2f} s)")
    print(f"decode + resample + cut alone (one thread): {decoding[0].wall:.2f} s "
          f"= {decoding[0].wall / model.wall:.1%} of the model's time")
    print(f"pipeline / extractor, per back-to-back pair: wall {_ratios(wall_ratios)}, "
          f"CPU {_ratios(cpu_ratios)}; median wall {statistics.median(wall_ratios):.3f}, "
          f"CPU {statistics.median(cpu_ratios):.3f} (target >= 0.90)")
    if extractor.windowing.seconds is None:
        print("work: see bench_fma518.py (whole-track extractors run C kernels, which "
              "torch's FLOP counter does not see)")
        return
    flops = flops_per_window(extractor, first[0], rate)
    model_cpu = statistics.median(m.cpu for m in model_runs)
    per_cpu_second = flops * n_windows / model_cpu / 1e9
    matmul = matmul_gflops()
    print(f"work: {flops / 1e9:.2f} GFLOP per window; the extractor does {per_cpu_second:.1f} "
          f"GFLOP per CPU second, a float32 matmul {matmul:.1f}: "
          f"{per_cpu_second / matmul:.2f} of what this CPU's BLAS reaches")


def embed_cost(keep: bool, name: str, windows: int, batch_size: int) -> tuple[float, int]:
    """CPU seconds (user + system) and minor page faults of `embed` over `windows` random
    windows, in a fresh process, with or without `keep_freed_memory`."""
    if keep:
        keep_freed_memory()
    extractor = registry.create(name)
    extractor.load(torch.device("cpu"))
    window = int(round(extractor.windowing.seconds * extractor.sample_rate))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((windows, window))).astype(np.float32)
    time_extractor(extractor, [(audio[:batch_size], extractor.sample_rate)], batch_size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = time_extractor(extractor, [(audio, extractor.sample_rate)], batch_size).cpu
    return cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def allocator_check(args: argparse.Namespace) -> None:
    """The model's CPU cost with glibc's default allocator settings and with
    `keep_freed_memory`, each in a fresh process (the setting cannot be undone)."""
    spawn = multiprocessing.get_context("spawn")
    for keep in (False, True):
        with spawn.Pool(1) as pool:
            cpu, faults = pool.apply(embed_cost, (keep, args.extractor, 48, args.batch_size))
        label = "keep_freed_memory" if keep else "glibc defaults   "
        print(f"allocator, {label}: {cpu:6.2f} CPU s for 48 windows "
              f"({cpu / 48 * 1000:.0f} ms/window), {faults} minor page faults")


def _ratios(ratios: list[float]) -> str:
    return "[" + ", ".join(f"{r:.3f}" for r in ratios) + "]"


def _runs(timings: list[Timing]) -> str:
    return "[" + ", ".join(f"{t.wall:.2f}" for t in timings) + "]"


def write_features(writer: StoreWriter, extractor: Extractor, track_ids: list[str]) -> None:
    """Real-shaped stored rows (random embeddings) of `extractor` for every track, in parts
    of `TRACKS_PER_PART` as the flow writes them: a store with nothing left to extract."""
    builder = RowBuilder(extractor, "bench-noop")
    rng = np.random.default_rng(0)
    windows = 1 if extractor.windowing.seconds is None else 10  # whole-track: one window
    for start in range(0, len(track_ids), TRACKS_PER_PART):
        rows = []
        for track_id in track_ids[start : start + TRACKS_PER_PART]:
            pool = TrackPool(extractor.outputs)
            pool.add({spec.name: rng.standard_normal((windows, spec.dim)).astype(np.float32)
                      for spec in extractor.outputs})
            rows.append(builder.row(track_id, 30.0, pool))
        writer.append_features(extractor.name, extractor.config_hash(), builder.table(rows))


def noop_rerun(args: argparse.Namespace) -> None:
    """A store with `--noop-tracks` tracks, all with stored features; time the re-run."""
    extractor = registry.create(args.extractor)
    n = args.noop_tracks
    paths = [f"genre-{i % 10}/track-{i:06d}.flac" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="mfs-bench-noop-") as folder:
        store = Store(folder)
        with timed() as building, store.writing("bench tracks") as writer:
            writer.replace_tracks(LIBRARY, tracks_table(Path(folder) / "music", paths,
                                                        [(30.0, 22050, 1)] * n))
            write_features(writer, extractor, [f"{LIBRARY}:{Path(p).stem}" for p in paths])
        parts = len(list(store.features_dir.rglob("*.parquet")))
        times = []
        for _ in range(3):
            with timed() as timing:
                result = run_extract(store, LIBRARY, [args.extractor],
                                     ExtractSettings(device="cpu"))
            times.extend(timing)
        counts = result["extractors"][args.extractor]
    if counts["planned"] != 0:
        raise SystemExit(f"no-op re-run planned {counts['planned']} tracks: {counts}")
    print(f"no-op re-run: {n} tracks, {parts} feature parts "
          f"(store built in {building[0].wall:.1f} s): "
          f"run_extract {_runs(times)} s, planned {counts['planned']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=40, help="GTZAN clips to extract")
    parser.add_argument("--extractor", default="musicnn-mtt")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noop-tracks", type=int, default=10_000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-noop", action="store_true")
    parser.add_argument("--allocator-check", action="store_true",
                        help="also compare the model's CPU cost with and without "
                             "keep_freed_memory (two fresh processes)")
    args = parser.parse_args()
    if args.allocator_check:
        allocator_check(args)
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_noop:
        noop_rerun(args)


if __name__ == "__main__":
    main()

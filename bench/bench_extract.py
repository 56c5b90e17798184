"""Extraction throughput: the extract flow end to end against the extractor alone, and the
cost of a re-run that has nothing to do.

* Throughput: `run_extract` (plan, decode, window, batch, pool, write Parquet parts) over
  real GTZAN clips, against the same extractor's `embed` alone over the same windows in
  the same batch size, decoded and cut beforehand (so it is the model's time and nothing
  else). `pipeline / extractor` is the share of the model's speed the pipeline keeps; the
  target is >= 0.90. Runs alternate, each on a fresh store, and the best of `--repeats`
  of each is kept (the least disturbed by whatever else the machine runs).
* Work: the model's FLOPs per window (counted by torch from its conv and matmul shapes)
  against this machine's float32 matmul GFLOP/s, i.e. how close the extractor is to the
  most this CPU can do.
* No-op re-run: `run_extract` on a store of `--noop-tracks` synthetic tracks whose features
  are all stored (real-shaped rows, in parts of 64 as the flow writes them). It must plan
  nothing, load no model, decode nothing, and take seconds.

    .venv/bin/python bench/bench_extract.py                    # 40 clips, musicnn-mtt, batch 16
    .venv/bin/python bench/bench_extract.py --tracks 100 --repeats 3 --batch-size 32
    .venv/bin/python bench/bench_extract.py --skip-throughput  # only the no-op re-run
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.flop_counter import FlopCounterMode

from mfs.extractors import registry
from mfs.extractors.audio import probe
from mfs.extractors.base import Extractor
from mfs.extractors.pipeline import RowBuilder, load_mono
from mfs.extractors.pooling import TrackPool
from mfs.extractors.windowing import cut_windows
from mfs.flows.extract import TRACKS_PER_PART, run_extract
from mfs.store import Store, schema

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


def time_pipeline(clips: list[Path], name: str, batch_size: int) -> tuple[float, dict]:
    """Wall seconds of `run_extract` over `clips` in a fresh store, and its counts."""
    infos = [(info.duration_s, info.sample_rate, info.channels)
             for info in map(probe, clips)]
    paths = [str(clip.relative_to(GTZAN)) for clip in clips]
    with tempfile.TemporaryDirectory(prefix="mfs-bench-") as folder:
        store = Store(folder)
        with store.writing("bench tracks") as writer:
            writer.replace_tracks(LIBRARY, tracks_table(GTZAN, paths, infos))
        started = time.perf_counter()
        result = run_extract(store, LIBRARY, [name], batch_size=batch_size, device="cpu")
        seconds = time.perf_counter() - started
    counts = result["extractors"][name]
    if counts["ok"] != len(clips):
        raise SystemExit(f"pipeline extracted {counts['ok']} of {len(clips)} clips: {counts}")
    return seconds, counts


def decoded_windows(clips: list[Path], extractor: Extractor) -> np.ndarray:
    """Every window of every clip, decoded and cut in memory, in track order."""
    cut = []
    for clip in clips:
        mono, rate = load_mono(clip, extractor.sample_rate)
        cut.append(cut_windows(mono, rate, extractor.windowing))
    return np.concatenate(cut)


def time_extractor(extractor: Extractor, windows: np.ndarray, batch_size: int) -> float:
    """Seconds of `extractor.embed` alone over `windows` in batches of `batch_size`."""
    batches = torch.from_numpy(windows).split(batch_size)
    with torch.inference_mode():
        started = time.perf_counter()
        for batch in batches:
            extractor.embed(batch, extractor.sample_rate)
        return time.perf_counter() - started


def flops_per_window(extractor: Extractor, window: np.ndarray) -> int:
    """The model's FLOPs for one window (torch counts conv/matmul as 2 x multiply-adds)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        extractor.embed(torch.from_numpy(window[None]), extractor.sample_rate)
    return counter.get_total_flops()


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of a square matmul: what this CPU's BLAS can do at best."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:  # noqa: ANN001 - any zero-argument callable
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def throughput(args: argparse.Namespace) -> None:
    clips = pick_clips(args.tracks)
    extractor = registry.create(args.extractor)
    extractor.load(torch.device("cpu"))
    windows = decoded_windows(clips, extractor)
    time_extractor(extractor, windows[: args.batch_size], args.batch_size)  # warm-up
    model_runs, pipeline_runs = [], []
    for _ in range(args.repeats):
        model_runs.append(time_extractor(extractor, windows, args.batch_size))
        pipeline_runs.append(time_pipeline(clips, args.extractor, args.batch_size))
    model_s = min(model_runs)
    pipeline_s, counts = min(pipeline_runs, key=lambda run: run[0])
    n = len(clips)
    print(f"{args.extractor}, {n} clips, {len(windows)} windows, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, cpu")
    print(f"extractor alone : {model_s:7.2f} s  {n / model_s:6.2f} tracks/s  "
          f"{len(windows) / model_s:6.1f} windows/s   runs {_runs(model_runs)}")
    print(f"run_extract     : {pipeline_s:7.2f} s  {n / pipeline_s:6.2f} tracks/s  "
          f"(extraction loop {counts['seconds']:.2f} s)   runs "
          f"{_runs([run[0] for run in pipeline_runs])}")
    print(f"pipeline / extractor = {model_s / pipeline_s:.3f}  "
          f"(loop only: {model_s / counts['seconds']:.3f}; target >= 0.90)")
    flops = flops_per_window(extractor, windows[0])
    peak = matmul_gflops()
    achieved = flops * len(windows) / model_s / 1e9
    print(f"work: {flops / 1e9:.2f} GFLOP per window; extractor {achieved:.1f} GFLOP/s vs "
          f"matmul {peak:.1f} GFLOP/s on this CPU = {achieved / peak:.2f} of the BLAS peak")


def _runs(seconds: list[float]) -> str:
    return "[" + ", ".join(f"{s:.2f}" for s in seconds) + "]"


def noop_rerun(args: argparse.Namespace) -> None:
    """A store with `--noop-tracks` tracks, all with stored features; time the re-run."""
    extractor = registry.create(args.extractor)
    builder = RowBuilder(extractor, "bench-noop")
    rng = np.random.default_rng(0)
    n = args.noop_tracks
    paths = [f"genre-{i % 10}/track-{i:06d}.flac" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="mfs-bench-noop-") as folder:
        store = Store(folder)
        started = time.perf_counter()
        with store.writing("bench tracks") as writer:
            writer.replace_tracks(LIBRARY, tracks_table(Path(folder) / "music", paths,
                                                        [(30.0, 22050, 1)] * n))
            for start in range(0, n, TRACKS_PER_PART):
                rows = []
                for path in paths[start : start + TRACKS_PER_PART]:
                    pool = TrackPool(extractor.outputs)
                    pool.add({spec.name: rng.standard_normal((10, spec.dim)).astype(np.float32)
                              for spec in extractor.outputs})
                    rows.append(builder.row(f"{LIBRARY}:{Path(path).stem}", 30.0, pool))
                writer.append_features(extractor.name, extractor.config_hash(),
                                       builder.table(rows))
        built = time.perf_counter() - started
        parts = len(list(store.features_dir.rglob("*.parquet")))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = run_extract(store, LIBRARY, [args.extractor], device="cpu")
            times.append(time.perf_counter() - started)
        counts = result["extractors"][args.extractor]
    if counts["planned"] != 0:
        raise SystemExit(f"no-op re-run planned {counts['planned']} tracks: {counts}")
    print(f"no-op re-run: {n} tracks, {parts} feature parts (store built in {built:.1f} s): "
          f"run_extract {_runs(times)} s, planned {counts['planned']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=40, help="GTZAN clips to extract")
    parser.add_argument("--extractor", default="musicnn-mtt")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--noop-tracks", type=int, default=10_000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-noop", action="store_true")
    args = parser.parse_args()
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_noop:
        noop_rerun(args)


if __name__ == "__main__":
    main()

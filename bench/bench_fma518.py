"""fma518 speed: the torch extractor against FMA's features.py on librosa, same clips.

* Rate: clips per second of `Fma518.embed` (one clip per call) and of
  `fma518_reference.compute_features` (features.py with librosa, the test's reference) over
  the same decoded GTZAN excerpts, per core (torch and the BLAS/OpenMP pools held to one
  thread) and with the default threads. Runs alternate and the best of `--repeats` is
  kept, since the machine may be busy with other work; both wall-clock and CPU time (all
  threads) are reported.
* Track length: the same per-core comparison on the 10 full 30 s GTZAN tracks, on one
  3-minute track (6 of them joined), and on the cc-music recordings longer than 30 s
  (whole, 44.1 kHz stereo averaged to mono, as most of FMA): librosa's cost per call has
  a large fixed part, so the ratio falls as tracks get longer, and features.csv was made
  from full tracks.
* Batches: per-clip cost, on one thread, of one call per clip against one call per
  `--batch` clips, all cut to the shortest clip (a batch is equally long tracks).
* Work: the counted FLOPs of the extractor's FFT and matrix products per clip, and the
  time they take at this core's measured rfft and float32 matmul rates, against the
  extractor's own time: how close to the arithmetic the whole extractor runs.
* Accuracy: the largest per-feature median relative error against librosa on these clips,
  so a speed-up that broke the numbers shows here too.

glibc's default malloc settings unless `--keep-freed-memory`, which applies what
`extract_rows` applies to the whole process (`pipeline.keep_freed_memory`: freed memory is
reused instead of faulted in afresh), to both sides.

    .venv/bin/python bench/bench_fma518.py               # 20 clips, 3 repeats
    .venv/bin/python bench/bench_fma518.py --clips 20 --repeats 5
    .venv/bin/python bench/bench_fma518.py --clips 20 --repeats 5 --keep-freed-memory
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from threadpoolctl import threadpool_limits

from mfs.extractors.fma518 import frame_stats, spectral
from mfs.extractors.fma518.cqt import cqt_plan, halfband_kernel
from mfs.extractors.fma518.extractor import CQT_OCTAVES, FEATURE_NAMES, Fma518
from mfs.extractors.fma518.features import (
    CENS_SMOOTHING,
    CHROMA_COLUMNS,
    N_CHROMA,
    N_MELS,
    N_MFCC,
)
from mfs.extractors.fma518.spectral import TUNING_ZERO
from mfs.extractors.mel import mel_filterbank
from mfs.extractors.pipeline import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fma518_reference as reference  # noqa: E402  (test-side module, librosa inside)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GTZAN = DATA / "gtzan-excerpts" / "genres"
GTZAN_FULL = DATA / "gtzan-full" / "genres"
CC_MUSIC = DATA / "cc-music"
LONG_TRACK_PARTS = 6  # full GTZAN tracks joined into one 3-minute track
Clip = tuple[np.ndarray, int]


def decode_mono(path: Path) -> Clip:
    """The whole file, its channels averaged, float32, at its own rate."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float32), rate


def pick_clips(count: int) -> list[Clip]:
    """`count` excerpts taken round-robin over the genres, decoded to mono float32."""
    if not GTZAN.is_dir():
        raise SystemExit(f"real clips not found at {GTZAN} (see shared/data/README.md)")
    genres = [sorted(folder.glob("*.flac")) for folder in sorted(GTZAN.iterdir())]
    paths = [p for row in zip_longest(*genres) for p in row if p is not None][:count]
    return [decode_mono(path) for path in paths]


def full_tracks() -> list[Clip]:
    """The 10 full 30 s GTZAN tracks (22.05 kHz): nearer the lengths features.csv was made
    from (FMA's full-length tracks) than the excerpts; `main` also joins the first
    `LONG_TRACK_PARTS` of them into one 3-minute track."""
    if not GTZAN_FULL.is_dir():
        raise SystemExit(f"full tracks not found at {GTZAN_FULL} (see shared/data/README.md)")
    return [decode_mono(path) for path in sorted(GTZAN_FULL.glob("*/*.au"))]


def cc_music_recordings(min_seconds: float = 30.0) -> list[Clip]:
    """The cc-music recordings longer than `min_seconds`, whole: real full-length tracks
    at 44.1 kHz, FMA's usual rate."""
    if not CC_MUSIC.is_dir():
        raise SystemExit(f"recordings not found at {CC_MUSIC} (see shared/data/README.md)")
    tracks = [decode_mono(path) for path in sorted(CC_MUSIC.glob("*.ogg"))]
    return [(mono, rate) for mono, rate in tracks if len(mono) >= min_seconds * rate]


def best_of(repeats: int, runs: dict[str, Callable[[], None]]) -> dict[str, tuple[float, float]]:
    """Best (wall, cpu) seconds of each run, the runs alternating so both see the same load."""
    best = {name: (np.inf, np.inf) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def embed_all(extractor: Fma518, inputs: list[tuple[torch.Tensor, int]]) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            for x, rate in inputs:
                extractor.embed(x, rate)
    return run


def compare_rates(clips: list[Clip], extractor: Fma518, repeats: int, threads: int | None,
                  label: str = "") -> None:
    """Clips/s of torch and librosa, with `threads` (None: library defaults)."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    run_torch = embed_all(extractor, [(torch.from_numpy(x)[None], rate) for x, rate in clips])

    def run_librosa() -> None:
        for x, rate in clips:
            reference.compute_features(x, rate)

    with threadpool_limits(threads):
        run_torch()
        run_librosa()  # warm-up: numba compiles, kernels get built
        best = best_of(repeats, {"torch": run_torch, "librosa": run_librosa})
    torch.set_num_threads(default)
    label = label or (f"{threads} thread" if threads else f"default threads ({default} torch)")
    n = len(clips)
    for clock, i in (("wall", 0), ("cpu", 1)):
        t, lib = best["torch"][i], best["librosa"][i]
        print(f"  {label:<28} {clock:>4}: torch {n / t:7.1f} clips/s  librosa "
              f"{n / lib:6.2f} clips/s  ratio {lib / t:5.1f}x")


def compare_batches(clips: list[Clip], extractor: Fma518, repeats: int, batch: int) -> None:
    """ms per clip on one thread, one clip per call against `batch` clips per call."""
    length = min(len(x) for x, _ in clips)
    cut = [x[:length] for x, _ in clips]
    rate = clips[0][1]
    runs = {"1": embed_all(extractor, [(torch.from_numpy(x)[None], rate) for x in cut]),
            str(batch): embed_all(extractor, [(torch.from_numpy(np.stack(cut[i : i + batch])),
                                               rate) for i in range(0, len(cut), batch)])}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        for run in runs.values():
            run()
        best = best_of(repeats, runs)
    torch.set_num_threads(threads)
    for size, (wall, cpu) in best.items():
        print(f"  batch {size:>2} ({length / rate:.1f} s clips): {wall / len(cut) * 1e3:5.1f} ms "
              f"wall, {cpu / len(cut) * 1e3:5.1f} ms CPU per clip")


def clip_flops(n_samples: int, rate: int, n_fft: int = 2048, hop: int = 512
               ) -> dict[str, float]:
    """FLOPs of one clip's FFT and matrix products as the extractor runs them (a
    multiply-add is 2): the real FFT as 2.5 N log2 N per frame; the CQT's octave products
    and its half-band filter (the odd taps, as the C kernel runs it); the
    chroma (with its zero columns), mel, DCT, CENS, tonnetz and centroid products. The
    CQT's shapes do not depend on the tuning, so tuning 0 stands for the clip's."""
    frames, bins = spectral.n_frames(n_samples, hop), n_fft // 2 + 1
    plan = cqt_plan(float(rate), hop, TUNING_ZERO, CQT_OCTAVES * N_CHROMA, N_CHROMA)
    odd_taps = len(halfband_kernel()) // 4 + 1  # the non-zero taps beside the centre
    halving, length = 0.0, n_samples
    for _ in range(plan.early_halvings + len(plan.octaves) - 1):
        length = (length + 1) // 2
        halving += length * (3 * odd_taps + 1)  # per output: centre, then add, mul, add
    cqt = sum(2.0 * frames * octave.kernel.size for octave in plan.octaves)
    mel = spectral.mel_blocks(mel_filterbank(float(rate), n_fft, N_MELS))
    filterbanks = 2 * frames * (bins * CHROMA_COLUMNS + sum(w.size for _, _, w in mel)
                                + N_MELS * N_MFCC + bins
                                + N_CHROMA * (CENS_SMOOTHING + 2) + N_CHROMA * 6)
    return {"fft": frames * 2.5 * n_fft * np.log2(n_fft), "cqt": cqt, "halving": halving,
            "filterbanks": float(filterbanks)}


def machine_rates(n_fft: int = 2048) -> tuple[float, float]:
    """This core's float32 matmul (1024²) and rfft(n_fft) GFLOP/s, the FFT in the
    extractor's chunks of `frame_stats.FFT_CHUNK` frames (best of 5)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    frames = torch.randn(frame_stats.FFT_CHUNK, n_fft)
    rates = []
    for work, flops in ((lambda: a @ b, 2 * 1024**3),
                        (lambda: torch.fft.rfft(frames),
                         frame_stats.FFT_CHUNK * 2.5 * n_fft * np.log2(n_fft))):
        work()
        rates.append(flops / min(timed(work) for _ in range(5)) / 1e9)
    return rates[0], rates[1]


def timed(work: Callable[..., object], *args: object) -> float:
    start = time.process_time()
    work(*args)
    return time.process_time() - start


def report_work(clips: list[Clip], extractor: Fma518) -> None:
    """Counted FLOPs against the extractor's single-core time and this core's rates."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    flops: dict[str, float] = {}
    total_time = 0.0
    with threadpool_limits(1), torch.inference_mode():
        for x, rate in clips:
            xt = torch.from_numpy(x)[None]
            for name, value in clip_flops(len(x), rate).items():
                flops[name] = flops.get(name, 0.0) + value
            extractor.embed(xt, rate)
            total_time += min(timed(extractor.embed, xt, rate) for _ in range(3))
        gemm, fft = machine_rates()
    torch.set_num_threads(threads)
    n = len(clips)
    products = flops["cqt"] + flops["halving"] + flops["filterbanks"]
    ideal = flops["fft"] / (fft * 1e9) + products / (gemm * 1e9)
    print(f"  per clip: FFT {flops['fft'] / n / 1e6:.0f} MFLOP; products "
          f"{products / n / 1e6:.0f} MFLOP (CQT octaves {flops['cqt'] / n / 1e6:.0f} and "
          f"half-band {flops['halving'] / n / 1e6:.0f} in C, filterbanks "
          f"{flops['filterbanks'] / n / 1e6:.0f} in torch)")
    print(f"  this core: float32 matmul {gemm:.1f} GFLOP/s, rfft({extractor.config.n_fft}) "
          f"{fft:.1f} GFLOP/s: the products at the matmul rate and the FFT at its rate "
          f"need {ideal / n * 1e3:.1f} ms per clip; the "
          f"extractor takes {total_time / n * 1e3:.1f} ms CPU ({ideal / total_time:.0%} of it "
          f"is the counted arithmetic at full speed)")


def report_accuracy(clips: list[Clip], extractor: Fma518) -> None:
    with torch.inference_mode():
        got = np.array([extractor.embed(torch.from_numpy(x)[None], rate)["features"][0].numpy()
                        for x, rate in clips])
    want = np.array([reference.compute_features(x, rate).to_numpy() for x, rate in clips])
    floor = np.maximum(0.1 * np.median(np.abs(want), axis=0), 1e-6)
    median = np.median(np.abs(got - want) / np.maximum(np.abs(want), floor), axis=0)
    worst = int(np.argmax(median))
    print(f"  worst per-feature median relative error vs librosa: {median[worst]:.1e} "
          f"({FEATURE_NAMES[worst]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="malloc as in extract_rows (pipeline.keep_freed_memory)")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    clips = pick_clips(args.clips)
    seconds = sum(len(x) / rate for x, rate in clips)
    print(f"{len(clips)} GTZAN excerpts, {seconds:.0f} s of audio at 22.05 kHz, "
          f"torch {torch.__version__}, librosa {reference.librosa.__version__}, malloc: "
          f"{'keep_freed_memory' if args.keep_freed_memory else 'glibc defaults'}")
    extractor = Fma518()
    extractor.load(torch.device("cpu"))
    print(f"rate (best of {args.repeats}, alternating):")
    compare_rates(clips, extractor, args.repeats, threads=1)
    compare_rates(clips, extractor, args.repeats, threads=None)
    print(f"track length (1 thread, best of {args.repeats}, alternating):")
    full = full_tracks()
    compare_rates(full, extractor, args.repeats, threads=1, label="10 tracks of 30 s")
    joined = np.concatenate([x for x, _ in full[:LONG_TRACK_PARTS]])
    compare_rates([(joined, full[0][1])], extractor, args.repeats, threads=1,
                  label=f"1 track of {len(joined) / full[0][1]:.0f} s")
    recordings = cc_music_recordings()
    average = sum(len(x) / rate for x, rate in recordings) / len(recordings)
    compare_rates(recordings, extractor, args.repeats, threads=1,
                  label=f"{len(recordings)} x {average:.0f} s avg, 44.1 kHz")
    print(f"batches (1 thread, best of {args.repeats}):")
    compare_batches(clips, extractor, args.repeats, args.batch)
    print("work (1 thread):")
    report_work(clips, extractor)
    print("accuracy:")
    report_accuracy(clips, extractor)


if __name__ == "__main__":
    main()

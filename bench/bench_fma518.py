"""fma518 speed: the torch extractor against FMA's features.py on librosa, same clips.

* Rate: clips per second of `Fma518.embed` and of `fma518_reference.compute_features`
  (features.py with librosa, the test's reference) over the same decoded GTZAN excerpts,
  per core (torch and the BLAS/OpenMP pools held to one thread) and with the default
  threads. Runs alternate and the best of `--repeats` is kept, since the machine may be
  busy with other work; both wall-clock and CPU time (all threads) are reported.
* Work: FLOPs of the STFT (real FFT, 2.5 N log2 N) and of the CQT (half-band FIR taps and
  each octave's kernel product), against this core's measured float32 matmul and FFT
  rates: how close the extractor's heavy kernels run to what this CPU does.
* Accuracy: the largest per-feature median relative error against librosa on these clips,
  so a speed-up that broke the numbers shows here too.

    .venv/bin/python bench/bench_fma518.py               # 20 clips, 3 repeats
    .venv/bin/python bench/bench_fma518.py --clips 40 --repeats 5
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

from mfs.extractors import spectral
from mfs.extractors.cqt import CQTPlan, PlanTensors, cqt_octaves, cqt_plan, halfband_kernel
from mfs.extractors.fma518 import CQT_OCTAVES, FEATURE_NAMES, N_CHROMA, Fma518

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fma518_reference as reference  # noqa: E402  (test-side module, librosa inside)

GTZAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-excerpts" / "genres"
Clip = tuple[np.ndarray, int]


def pick_clips(count: int) -> list[Clip]:
    """`count` excerpts taken round-robin over the genres, decoded to mono float32."""
    if not GTZAN.is_dir():
        raise SystemExit(f"real clips not found at {GTZAN} (see shared/data/README.md)")
    genres = [sorted(folder.glob("*.flac")) for folder in sorted(GTZAN.iterdir())]
    paths = [p for row in zip_longest(*genres) for p in row if p is not None][:count]
    clips = []
    for path in paths:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        clips.append((data.mean(axis=1, dtype=np.float32), rate))
    return clips


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


def compare_rates(clips: list[Clip], extractor: Fma518, repeats: int, threads: int | None
                  ) -> None:
    """Clips/s of torch and librosa, with `threads` (None: library defaults)."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    tensors = [(torch.from_numpy(x)[None], rate) for x, rate in clips]

    def run_torch() -> None:
        with torch.inference_mode():
            for x, rate in tensors:
                extractor.embed(x, rate)

    def run_librosa() -> None:
        for x, rate in clips:
            reference.compute_features(x, rate)

    with threadpool_limits(threads):
        run_torch()
        run_librosa()  # warm-up: numba compiles, kernels get built
        best = best_of(repeats, {"torch": run_torch, "librosa": run_librosa})
    torch.set_num_threads(default)
    label = f"{threads} thread" if threads else f"default threads ({default} torch)"
    n = len(clips)
    for clock, i in (("wall", 0), ("cpu", 1)):
        t, lib = best["torch"][i], best["librosa"][i]
        print(f"  {label:<28} {clock:>4}: torch {n / t:7.1f} clips/s  librosa "
              f"{n / lib:6.2f} clips/s  ratio {lib / t:5.1f}x")


def kernel_flops(n_samples: int, plan: CQTPlan, n_fft: int = 2048, hop: int = 512
                 ) -> tuple[float, float]:
    """(STFT, CQT) FLOPs for one clip, a multiply-add counting 2: the real FFT as
    2.5 N log2 N per frame, the half-band FIR as its 39 taps per output sample, and each
    octave as its frames times its (n_fft, 2 x 12) kernel."""
    stft = spectral.n_frames(n_samples, hop) * 2.5 * n_fft * np.log2(n_fft)
    taps = len(halfband_kernel())
    cqt, length = 0.0, n_samples
    for _ in range(plan.early_halvings):
        length = (length + 1) // 2
        cqt += 2 * taps * length
    for i, octave in enumerate(plan.octaves):
        if i > 0:
            length = (length + 1) // 2
            cqt += 2 * taps * length
        n_fft_octave, width = octave.kernel.shape
        cqt += 2 * spectral.n_frames(length, octave.hop_length) * n_fft_octave * width
    return stft, cqt


def machine_rates() -> tuple[float, float]:
    """This core's float32 matmul and batched rfft(2048) GFLOP/s (best of 5)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    frames = torch.randn(2000, 2048)
    rates = []
    for work, flops in ((lambda: a @ b, 2 * 1024**3),
                        (lambda: torch.fft.rfft(frames), 2000 * 2.5 * 2048 * 11)):
        work()
        rates.append(flops / min(timed(work) for _ in range(5)) / 1e9)
    return rates[0], rates[1]


def timed(work: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    work(*args)
    return time.perf_counter() - start


def kernels(x: torch.Tensor, window: torch.Tensor, tensors: PlanTensors) -> None:
    spectral.stft_spectra(x, window, 512)
    cqt_octaves(x, tensors, spectral.n_frames(x.shape[-1], 512))


def report_work(clips: list[Clip], extractor: Fma518) -> None:
    """Counted STFT + CQT FLOPs against single-core times and this core's rates."""
    torch.set_num_threads(1)
    window = torch.hann_window(2048)
    flops = np.zeros(2)
    kernel_time = total_time = 0.0
    with torch.inference_mode():
        for x, rate in clips:
            xt = torch.from_numpy(x)[None]
            mag = spectral.stft_spectra(xt, window, 512)[0]
            bins = spectral.pitch_bins(rate, 2048)
            tuning = spectral.estimate_tuning(spectral.find_peaks(mag, *bins), bins, rate, 2048,
                                              squared=False)[0]
            plan = cqt_plan(float(rate), 512, tuning, CQT_OCTAVES * N_CHROMA, N_CHROMA)
            tensors = PlanTensors(plan, xt.device, torch.float32)
            flops += kernel_flops(len(x), plan)
            kernel_time += min(timed(kernels, xt, window, tensors) for _ in range(3))
            extractor.embed(xt, rate)
            total_time += min(timed(extractor.embed, xt, rate) for _ in range(3))
    gemm, fft = machine_rates()
    total = flops.sum()
    per_clip = flops / len(clips) / 1e6
    print(f"  STFT {per_clip[0]:.0f} + CQT {per_clip[1]:.0f} MFLOP per clip")
    print(f"  STFT+CQT kernels alone: {kernel_time / len(clips) * 1e3:.1f} ms/clip = "
          f"{total / kernel_time / 1e9:.1f} GFLOP/s; whole extractor "
          f"{total_time / len(clips) * 1e3:.1f} ms/clip")
    print(f"  this core: float32 matmul {gemm:.1f} GFLOP/s, rfft(2048) {fft:.1f} GFLOP/s; "
          f"the kernels run at {total / kernel_time / 1e9 / gemm:.0%} of matmul speed, the "
          f"STFT+CQT work is {kernel_time / total_time:.0%} of the extractor's time")


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
    args = parser.parse_args()
    clips = pick_clips(args.clips)
    seconds = sum(len(x) / rate for x, rate in clips)
    print(f"{len(clips)} GTZAN excerpts, {seconds:.0f} s of audio at 22.05 kHz, "
          f"torch {torch.__version__}, librosa {reference.librosa.__version__}")
    extractor = Fma518()
    extractor.load(torch.device("cpu"))
    print(f"rate (best of {args.repeats}, alternating):")
    compare_rates(clips, extractor, args.repeats, threads=1)
    compare_rates(clips, extractor, args.repeats, threads=None)
    print("work:")
    report_work(clips, extractor)
    print("accuracy:")
    report_accuracy(clips, extractor)


if __name__ == "__main__":
    main()

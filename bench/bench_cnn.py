"""The CNN extractors (panns-cnn14, vggish) on full-size models: our pipeline against the
reference packages' own one-track-at-a-time loop, and each model's FLOP rate against this
machine's matrix-product rate.

Full-size random weights in the official file layouts (`tests/cnn_weights.py`) go under a
temporary `$MFS_MODELS`, where the extractors find them through their real lookup, and the
reference packages load the same files. Then, on real 30 s GTZAN tracks
(`../shared/data/gtzan-full`), in the same run and `--repeats` times back to back:

* naive (the baseline): one track at a time as the reference package's README does it,
  decoded and resampled by the pipeline's own decoder and soxr (so the baseline loses
  nothing to a slower loader). panns-cnn14: panns_inference's `AudioTagging.inference`,
  the whole clip at 32 kHz through its `Cnn14` in one call. vggish: torchvggish's
  `waveform_to_examples` -> `VGG` -> `Postprocessor.postprocess`, all of a track's
  examples in one call;
* model only: the extractor's `embed` over the track's windows, cut beforehand, in
  batches of `--batch-size`: the most the pipeline can reach;
* pipeline: `run_extract` (what `mfs extract` runs, without Prefect) into a fresh store.

Reported per model: tracks/s of each, pipeline / naive (target >= 2x), pipeline / model
only, GFLOP per track of ours and of the reference (torch's `FlopCounterMode`), and the
GFLOP per wall and per CPU second of each model against a big float32 `torch.mm` measured
in the same run. `--profile` prints where the model's time goes (torch.profiler, one
batch of ours and one track of the reference, ops by self CPU time).

    .venv/bin/python bench/bench_cnn.py                          # both, 2 tracks, 1 repeat
    .venv/bin/python bench/bench_cnn.py --model vggish --profile
    .venv/bin/python bench/bench_cnn.py --tracks 10 --repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))  # the official-layout weight writers

from bench_extract import Timing, timed  # noqa: E402
from cnn_weights import write_labels, write_models_tree  # noqa: E402
from model_bench import (  # noqa: E402
    full_clips,
    lowest_cosine,
    machine_rates,
    model_only,
    pipeline,
    precisions,
    window_flops,
    window_outputs,
    with_precision,
)

from mfs.extractors import registry  # noqa: E402
from mfs.extractors.pipeline import keep_freed_memory, load_mono  # noqa: E402
from mfs.extractors.vggish.extractor import PCA_FILE, WEIGHTS_FILE  # noqa: E402
from mfs.extractors.windowing import cut_windows  # noqa: E402

MODELS = ("panns-cnn14", "vggish")
# One track through the reference, from its decoded mono samples.
Naive = Callable[[np.ndarray], object]


def panns_naive(models: Path, work: Path) -> tuple[int, Naive, torch.nn.Module]:
    """panns_inference's AudioTagging on the tree's 32 kHz checkpoint; (rate, one track,
    model). The package reads AudioSet's labels from ~/panns_data at import (and downloads
    them when absent), so it is imported with a home that holds them."""
    if importlib.util.find_spec("panns_inference") is None:
        raise SystemExit("panns_inference not installed: pip install --no-deps "
                         "panns-inference torchlibrosa")
    home = work / "panns-home"
    write_labels(home / "panns_data" / "class_labels_indices.csv")
    old = os.environ.get("HOME", "")
    os.environ["HOME"] = str(home)
    try:
        from panns_inference import AudioTagging
    finally:
        os.environ["HOME"] = old
    checkpoint = models / "PANNs" / "cnn14" / "Cnn14_mAP=0.431.pth"
    with _quiet():  # it prints the checkpoint path and "Using CPU."
        tagger = AudioTagging(checkpoint_path=str(checkpoint), device="cpu")
    return 32000, lambda audio: tagger.inference(audio[None, :]), tagger.model


def vggish_naive(models: Path, work: Path) -> tuple[int, Naive, torch.nn.Module]:
    """torchvggish's VGG and Postprocessor on the tree's files (built as `vggish()` builds
    them, without its download); (rate, one track, model)."""
    if importlib.util.find_spec("torchvggish") is None:
        raise SystemExit("torchvggish not installed: pip install --no-deps torchvggish resampy")
    if importlib.util.find_spec("resampy") is None:  # only for audio not at 16 kHz
        sys.modules.setdefault("resampy", types.ModuleType("resampy"))
    import torchvggish
    from torchvggish.torchvggish import Postprocessor, _vgg

    folder = models / "VGGish"
    vgg = _vgg(postprocess=False)
    vgg.load_state_dict(torch.load(folder / WEIGHTS_FILE, weights_only=True))
    vgg.eval()
    post = object.__new__(Postprocessor)  # its __init__ downloads the PCA file
    pca = torch.load(folder / PCA_FILE, weights_only=False)
    post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
    post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()

    def one(audio: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return post.postprocess(vgg(torchvggish.waveform_to_examples(audio, 16000)))

    return 16000, one, vgg


NAIVE = {"panns-cnn14": panns_naive, "vggish": vggish_naive}


@contextmanager
def _quiet():  # noqa: ANN202 - a plain context manager
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = stdout


def naive_loop(one: Naive, rate: int, clips: list[Path]) -> Timing:
    """One track at a time: decode + resample, then the reference on the whole track."""
    one(load_mono(clips[0], rate)[0])  # warm-up: first-call allocations and thread start
    with timed() as timing:
        for clip in clips:
            one(load_mono(clip, rate)[0])
    return timing[0]


def naive_flops(one: Naive, rate: int, clip: Path) -> int:
    audio = load_mono(clip, rate)[0]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        one(audio)
    return counter.get_total_flops()


def profile(extractor: object, one: Naive, clip: Path, batch_size: int) -> None:
    """Ops by self CPU time: one batch of our windows, then one track of the reference."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    rate = extractor.sample_rate
    audio = load_mono(clip, rate)[0]
    windows = torch.from_numpy(cut_windows(audio, rate, extractor.windowing)[:batch_size])
    for label, call in ((f"ours, {len(windows)} windows", lambda: extractor.embed(windows, rate)),
                        ("reference, one track", lambda: one(audio))):
        with torch.inference_mode():
            call()
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                call()
        print(f"\n{extractor.name}, {label}:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def bench_model(name: str, args: argparse.Namespace, models: Path,
                work: Path) -> list[dict]:
    """Per repeat, back to back so all share the load of the moment: the naive loop, then
    model only and pipeline for each `--precision`; one result per precision."""
    clips = full_clips(args.tracks)
    rate, one, reference = NAIVE[name](models, work)
    specs = [with_precision(name, p) for p in precisions(args.precision)]
    extractors = [registry.create_from_spec(spec) for spec in specs]
    for extractor in extractors:
        location = extractor.model_location() or ""
        if not location.startswith(f"$MFS_MODELS: {models}"):
            raise SystemExit(f"{name}: found {location!r}, not the bench's model under "
                             f"{models}")
        extractor.load(torch.device("cpu"))
    if args.profile:
        profile(extractors[-1], one, clips[0],
                args.batch_size or extractors[-1].default_batch_size)
    naives: list[Timing] = []
    ours: list[list[Timing]] = [[] for _ in specs]
    pipes: list[list[Timing]] = [[] for _ in specs]
    for _ in range(args.repeats):
        naives.append(naive_loop(one, rate, clips))
        for i, (spec, extractor) in enumerate(zip(specs, extractors, strict=True)):
            batch = args.batch_size or extractor.default_batch_size  # as `mfs extract`
            timing, n_windows = model_only(extractor, clips, batch)
            ours[i].append(timing)
            pipes[i].append(pipeline(spec, clips, args.batch_size))
    cosines = [{} if extractor.precision == "float32" else lowest_cosine(
        window_outputs(extractor, clips[0], "float32"), window_outputs(extractor, clips[0]))
        for extractor in extractors]
    window = cut_windows(load_mono(clips[0], rate)[0], rate, extractors[0].windowing)[0]
    n, gflop = len(clips), window_flops(extractors[0], window) * n_windows / len(clips) / 1e9
    return [{"name": name, "precision": extractor.precision, "tracks": n,
             "windows": n_windows, "params": sum(p.numel() for p in reference.parameters()),
             "naive": min(naives, key=lambda t: t.wall),
             "model": min(ours[i], key=lambda t: t.wall),
             "pipeline": min(pipes[i], key=lambda t: t.wall),
             "ratios": [nv.wall / p.wall for nv, p in zip(naives, pipes[i], strict=True)],
             "gflop": gflop, "naive_gflop": naive_flops(one, rate, clips[0]) / 1e9,
             "cosine": cosines[i]}
            for i, extractor in enumerate(extractors)]


def report(results: list[dict], rates: dict[str, tuple[float, float]]) -> None:
    """One row per model and precision; the model's FLOP rates are put against the matrix
    product's in the row's precision, the naive loop's against float32's."""
    fp_wall = rates["float32"][0]
    print("\n| model | precision | params | windows/track | naive tracks/s | model only tracks/s | "
          "pipeline tracks/s | pipeline / naive | pipeline / model only | GFLOP/track "
          "naive / ours | naive GFLOP/s (of fp32 mm) | ours GFLOP/s (of mm in its precision) | "
          "ours GFLOP per CPU s (of mm in its precision) |")
    print("|---" * 13 + "|")
    for r in results:
        n = r["tracks"]
        nb, mo, pl = (n / r[k].wall for k in ("naive", "model", "pipeline"))
        naive_rate = r["naive_gflop"] * nb  # includes decoding: a lower bound of the model's
        wall_rate, cpu_rate = r["gflop"] * mo, r["gflop"] * n / r["model"].cpu
        mm_wall, mm_cpu = rates[r["precision"]]
        print(f"| {r['name']} | {r['precision']} | {r['params'] / 1e6:.1f}M | "
              f"{r['windows'] / n:.1f} | {nb:.3f} | "
              f"{mo:.3f} | {pl:.3f} | {pl / nb:.2f}x | {pl / mo:.2f} | "
              f"{r['naive_gflop']:.1f} / {r['gflop']:.1f} | {naive_rate:.0f} "
              f"({naive_rate / fp_wall:.0%}) | {wall_rate:.0f} ({wall_rate / mm_wall:.0%}) | "
              f"{cpu_rate:.0f} ({cpu_rate / mm_cpu:.0%}) |")
    for r in results:
        ratios = ", ".join(f"{x:.2f}" for x in r["ratios"])
        print(f"{r['name']} ({r['precision']}): pipeline / naive per back-to-back repeat "
              f"[{ratios}], median "
              f"{statistics.median(r['ratios']):.2f}; CPU s naive {r['naive'].cpu:.1f}, model "
              f"{r['model'].cpu:.1f}, pipeline {r['pipeline'].cpu:.1f} (with its model load)"
              + "".join(f"; lowest cosine to float32, {name} {value:.4f}"
                        for name, value in r["cosine"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    parser.add_argument("--tracks", type=int, default=2, help="30 s GTZAN tracks (at most 10)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="windows per model call (default: each extractor's own, as "
                             "`mfs extract` uses: panns-cnn14 16, vggish 64)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="float32,auto",
                        help="comma list of precisions to time (or `default`: the "
                             "extractor's default config), each against the same naive loop")
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()
    full_clips(1)  # fails early, in one line, without the real tracks
    names = list(MODELS) if args.model == "all" else [args.model]
    keep_freed_memory()  # as extract_rows does, for every side
    with tempfile.TemporaryDirectory(prefix="mfs-bench-cnn-") as folder:
        work = Path(folder)
        models = write_models_tree(work / "models")
        os.environ.update({"MFS_MODELS": str(models), "TORCH_HOME": str(work / "torch"),
                           "PREFECT_HOME": str(work / "prefect")})
        rates = machine_rates()
        results = []
        for name in names:
            started = time.perf_counter()
            results.extend(bench_model(name, args, models, work))
            print(f"{name}: done in {time.perf_counter() - started:.0f} s", flush=True)
        report(results, rates)
        load = os.getloadavg()
        print(f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
        if args.tracks < 10 or args.repeats < 3:
            print("(fewer than 10 tracks or 3 repeats: a quick check, not a result)")


if __name__ == "__main__":
    main()

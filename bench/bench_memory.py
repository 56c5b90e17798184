"""fma518 peak memory against track length: the whole-track path against the streamed one.

Each measurement is one fresh child process that imports everything, loads `fma518`,
extracts a 5 s warm-up clip (constants, CQT plans, codec and thread start-up), resets its
peak RSS to the resident size (`/proc/self/clear_refs` 5) and reads that (`before`), then
extracts one track and reads the peak (`VmHWM`): growth is what the track itself cost.
Two ways to extract it, in the same run:

* `whole`: the old path, what the pipeline did for every whole-track extractor: decode
  the track whole (`pipeline.load_mono`), then `Fma518.embed` on it;
* `pipeline`: `pipeline.extract_rows`, as `mfs extract` runs it (`TrackPasses`: a track
  over `HELD_SAMPLES` is decoded pass by pass and `Fma518.embed_track` reads it in
  segments of `SEGMENT_FRAMES` frames).

Long tracks are real music: the 10 full GTZAN tracks (30 s each, 22.05 kHz) joined and
repeated with changing gains to each length, written as 16-bit WAV in `--work`, and
resampled (soxr) for the other rates. Both paths' rows are compared too.

    .venv/bin/python bench/bench_memory.py                          # 0.5, 10, 60 min at 22.05 kHz
    .venv/bin/python bench/bench_memory.py --minutes 0.5 10 --rates 22050 96000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GTZAN_FULL = DATA / "gtzan-full" / "genres"

# What every peak-RSS child process starts with (this file's, bench_segments.py's and
# bench_transformers.py's): its imports and `status`, a /proc/self/status field in bytes.
CHILD_PRELUDE = """
import json, sys, time
from pathlib import Path
import torch

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
"""

CHILD = CHILD_PRELUDE + """from mfs.extractors.fma518.extractor import Fma518
from mfs.extractors.pipeline import RowBuilder, extract_rows, keep_freed_memory, load_mono

mode, warm, path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
keep_freed_memory()  # as extract_rows does, for both paths
torch.set_num_threads(Fma518.cpu_threads)  # as extract_rows does (`torch_threads`)
extractor = Fma518()
extractor.load(torch.device("cpu"))
builder = RowBuilder(extractor, "bench")

def run(track):
    if mode == "whole":
        mono, rate = load_mono(track, None)
        with torch.inference_mode():
            return extractor.embed(torch.from_numpy(mono)[None], rate)["features"][0].numpy()
    [row] = list(extract_rows(builder, [("t", track)], batch_size=1, workers=1))
    return row["features"]

run(warm)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # VmHWM := VmRSS: import and warm-up peaks are forgotten
before = status("VmRSS")
start, cpu = time.perf_counter(), time.process_time()
features = run(path)
print(json.dumps({"before": before, "peak": status("VmHWM"), "wall": time.perf_counter() - start,
                  "cpu": time.process_time() - cpu,
                  "features": [float(v) for v in features]}))
"""


def music(seconds: float) -> np.ndarray:
    """The 10 full GTZAN tracks joined, 22.05 kHz mono float32, repeated to `seconds` with
    a gain that changes every pass (so the repeats are not identical frames)."""
    clips = [sf.read(path, dtype="float32")[0] for path in sorted(GTZAN_FULL.glob("*/*.au"))]
    joined = np.concatenate([c if c.ndim == 1 else c.mean(axis=1) for c in clips])
    n = int(seconds * 22050)
    passes = -(-n // len(joined))
    gains = np.linspace(0.6, 1.0, passes, dtype=np.float32)
    return np.concatenate([g * joined for g in gains])[:n]


def write_track(work: Path, minutes: float, rate: int) -> Path:
    """A `minutes`-long music WAV at `rate`, written a five-minute piece at a time."""
    path = work / f"music-{minutes:g}min-{rate}.wav"
    if path.exists():
        return path
    piece = 300.0
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as out:
        done = 0.0
        while done < minutes * 60 - 1e-9:
            seconds = min(piece, minutes * 60 - done)
            x = music(seconds) * np.float32(0.9 + 0.1 * np.cos(done))
            out.write(x if rate == 22050 else soxr.resample(x, 22050, rate, quality="HQ"))
            done += seconds
    return path


def measure(mode: str, warm: Path, path: Path) -> dict:
    child = subprocess.run([sys.executable, "-c", CHILD, mode, str(warm), str(path)],
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[0.5, 10, 60])
    parser.add_argument("--rates", type=int, nargs="+", default=[22050])
    parser.add_argument("--modes", nargs="+", default=["whole", "pipeline"])
    parser.add_argument("--skip-whole-over", type=float, default=60.0,
                        help="minutes above which the whole path is not run (its memory)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the WAVs")
    args = parser.parse_args()
    if not GTZAN_FULL.is_dir():
        sys.exit(f"bench_memory: needs the full GTZAN tracks in {GTZAN_FULL}")
    work = args.work or Path(tempfile.mkdtemp(prefix="mfs-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    warm = work / "warm.wav"
    sf.write(warm, music(5.0), 22050, subtype="PCM_16")
    print(f"{'rate':>6} {'min':>5} {'mode':>9} {'before MiB':>10} {'peak MiB':>9} "
          f"{'growth MiB':>10} {'wall s':>7} {'cpu s':>7}  vs whole")
    for rate in args.rates:
        growth: dict[tuple[str, float], float] = {}
        for minutes in args.minutes:
            path = write_track(work, minutes, rate)
            rows = {}
            for mode in args.modes:
                if mode == "whole" and minutes > args.skip_whole_over:
                    continue
                result = measure(mode, warm, path)
                rows[mode] = np.asarray(result["features"])
                grew = (result["peak"] - result["before"]) / 2**20
                growth[mode, minutes] = grew
                same = ""
                if mode != "whole" and "whole" in rows:
                    want = rows["whole"]
                    error = np.abs(rows[mode] - want) / np.maximum(np.abs(want), 1e-2)
                    same = f"max rel diff {np.nanmax(error):.1e}"
                print(f"{rate:>6} {minutes:>5g} {mode:>9} {result['before'] / 2**20:>10.0f} "
                      f"{result['peak'] / 2**20:>9.0f} {grew:>10.0f} "
                      f"{result['wall']:>7.2f} {result['cpu']:>7.2f}  {same}", flush=True)
        first = args.minutes[0]
        for mode in args.modes:
            ratios = [f"{m:g} min {growth[mode, m] / max(growth[mode, first], 1e-9):.1f}x"
                      for m in args.minutes[1:] if (mode, m) in growth]
            print(f"{rate} Hz {mode}: growth against {first:g} min: {', '.join(ratios)}")


if __name__ == "__main__":
    main()

"""Peak memory of whole-track library extractors on one long track, analysed whole
(`segment_s` past the track: the behaviour before `segment_s` existed) and by segments (the
default, 600 s; `mfs.extractors.segments`).

Each measurement is one fresh child process running `pipeline.extract_rows` as `mfs
extract` does, after a 5 s warm-up clip and a reset of its peak RSS (as
bench/bench_memory.py, whose real-music tracks it writes): growth is what the track cost.
The segmented vector is compared with the whole one (median and 90th percentile of the
relative difference over dimensions: how far the documented combination is from it).

    .venv/bin/python bench/bench_segments.py --minutes 60 --specs opensmile-compare
    .venv/bin/python bench/bench_segments.py --minutes 15 --specs essentia-music
    .venv/bin/python bench/bench_segments.py --minutes 15 --specs essentia-music \
        --segment-s 300 --no-whole
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
from bench_memory import CHILD_PRELUDE, GTZAN_FULL, music, write_track

CHILD = CHILD_PRELUDE + """from mfs.extractors import registry
from mfs.extractors.pipeline import RowBuilder, extract_rows, keep_freed_memory

spec, warm, path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
keep_freed_memory()
extractor = registry.create_from_spec(spec)
extractor.load(torch.device("cpu"))
builder = RowBuilder(extractor, "bench")
(output,) = extractor.outputs

def run(track):
    [row] = list(extract_rows(builder, [("t", track)], batch_size=1, workers=1))
    return row[output.name]

run(warm)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # VmHWM := VmRSS: import and warm-up peaks are forgotten
before = status("VmRSS")
start = time.perf_counter()
vector = run(path)
print(json.dumps({"before": before, "peak": status("VmHWM"), "wall": time.perf_counter() - start,
                  "vector": [float(v) for v in vector]}))
"""


def measure(spec: str, warm: Path, path: Path) -> dict:
    child = subprocess.run([sys.executable, "-c", CHILD, spec, str(warm), str(path)],
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--specs", nargs="+", default=["opensmile-compare"])
    parser.add_argument("--segment-s", type=float, nargs="*", default=[],
                        help="segment_s values to run besides the extractor's default")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-track run")
    parser.add_argument("--work", type=Path, default=None, help="folder for the WAVs")
    args = parser.parse_args()
    if not GTZAN_FULL.is_dir():
        sys.exit(f"bench_segments: needs the full GTZAN tracks in {GTZAN_FULL}")
    work = args.work or Path(tempfile.mkdtemp(prefix="mfs-bench-segments-"))
    work.mkdir(parents=True, exist_ok=True)
    warm = work / "warm.wav"
    sf.write(warm, music(5.0), 22050, subtype="PCM_16")
    path = write_track(work, args.minutes, 22050)
    print(f"{'spec':<40} {'before MiB':>10} {'peak MiB':>9} {'growth MiB':>10} {'wall s':>7}"
          "  vs whole: median / p90 rel diff")
    for spec in args.specs:
        whole_run = f"{spec}:segment_s={args.minutes * 60 + 1:g}"
        runs = [*([] if args.no_whole else [whole_run]), spec,
                *(f"{spec}:segment_s={s:g}" for s in args.segment_s)]
        whole = None
        for run in runs:
            result = measure(run, warm, path)
            vector = np.asarray(result["vector"])
            diff = ""
            if run == whole_run:
                whole = vector
            elif whole is not None:
                error = np.abs(vector - whole) / np.maximum(np.abs(whole), 1e-2)
                diff = f"{np.nanmedian(error):.1e} / {np.nanpercentile(error, 90):.1e}"
            print(f"{run:<40} {result['before'] / 2**20:>10.0f} {result['peak'] / 2**20:>9.0f} "
                  f"{(result['peak'] - result['before']) / 2**20:>10.0f} "
                  f"{result['wall']:>7.1f}  {diff}", flush=True)


if __name__ == "__main__":
    main()

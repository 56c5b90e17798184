"""Scan throughput: a first scan of a synthetic tree of small audio files, then an
unchanged rescan, which must not open a single audio file.

Baseline, measured in the same run on the same (warm) tree: a bare `os.walk` + `os.stat`
of every file, the least any rescan has to do to notice changes. `rescan / baseline` is
the scanner's overhead on top of that.

    .venv/bin/python bench/bench_scan.py                # 10,000 files
    .venv/bin/python bench/bench_scan.py --files 2000 --keep /tmp/tree
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

import mfs.libraries.scan as scan_module
from mfs.flows.scan import run_scan
from mfs.libraries.files import AUDIO_EXTENSIONS
from mfs.store import Store

RATE = 8000
SECONDS = 0.05


def build_tree(root: Path, files: int, per_folder: int = 100) -> None:
    """`files` tiny distinct WAVs (0.05 s, 8 kHz, 16-bit), `per_folder` to a folder, two
    levels deep (artist/album/track.wav), as a music collection is laid out."""
    frames = int(RATE * SECONDS)
    template = io.BytesIO()
    sf.write(template, np.zeros(frames, np.int16), RATE, format="WAV", subtype="PCM_16")
    header = template.getvalue()[: -2 * frames]
    rng = np.random.default_rng(0)
    for index in range(files):
        artist, album = index // (per_folder * 10), index // per_folder
        folder = root / f"artist-{artist:03d}" / f"album-{album:04d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        samples = rng.integers(-3000, 3000, frames, dtype=np.int16)
        (folder / f"track-{index:05d}.wav").write_bytes(header + samples.tobytes())


def walk_and_stat(root: Path) -> int:
    """The baseline: list every file and stat it, nothing else."""
    count = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            count += 1
    return count


class OpenCounter:
    """Counts every way the scanner could open an audio file: Python-level opens (an audit
    hook sees `open`, `os.open`, mutagen) and the libsndfile/FFmpeg probe and the
    fingerprint, which the scanner calls by name."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.counts: Counter[str] = Counter()
        sys.addaudithook(self._audit)
        for name in ("probe", "fingerprint"):
            original = getattr(scan_module, name)
            setattr(scan_module, name, self._counting(name, original))

    def _audit(self, event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            path = os.fsdecode(args[0])
            if path.startswith(self.root) and Path(path).suffix.lower() in AUDIO_EXTENSIONS:
                self.counts["open"] += 1

    def _counting(self, name: str, function):
        def counted(*args, **kwargs):
            self.counts[name] += 1
            return function(*args, **kwargs)

        return counted

    def take(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts


def best_of(repeats: int, function) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="rescans/baselines (best of)")
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    parser.add_argument("--max-rescan-s", type=float, default=5.0,
                        help="fail if the unchanged rescan takes longer")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="mfs-bench-scan-"))
    root, store = work / "music", Store(work / "store")
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(store.root, ignore_errors=True)
    try:
        start = time.perf_counter()
        build_tree(root, args.files)
        build_s = time.perf_counter() - start
        counter = OpenCounter(root)

        start = time.perf_counter()
        first = run_scan(store, "bench", "folder", root)
        first_s = time.perf_counter() - start
        first_opens = counter.take()
        assert first["new"] == first["tracks"] == args.files, first

        baseline_s, seen = best_of(args.repeats, lambda: walk_and_stat(root))
        assert seen == args.files
        rescan_s, again = best_of(args.repeats, lambda: run_scan(store, "bench"))
        rescan_opens = counter.take()
        assert again["unchanged"] == args.files and again["new"] == again["changed"] == 0
        assert not rescan_opens, f"the unchanged rescan opened audio files: {rescan_opens}"
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "files": args.files, "build_s": round(build_s, 2),
        "first_scan_s": round(first_s, 3), "first_scan_files_per_s": round(args.files / first_s),
        "first_scan_opens": first_opens,
        "baseline_walk_stat_s": round(baseline_s, 3),
        "rescan_s": round(rescan_s, 3), "rescan_files_per_s": round(args.files / rescan_s),
        "rescan_opens": sum(rescan_opens.values()),
        "rescan_over_baseline": round(rescan_s / baseline_s, 1),
    }
    print(f"first scan    {args.files} files in {first_s:7.3f} s  "
          f"({result['first_scan_files_per_s']} files/s; opens {first_opens})")
    print(f"baseline      os.walk + stat in {baseline_s:7.3f} s")
    print(f"rescan        {args.files} unchanged in {rescan_s:7.3f} s  "
          f"({result['rescan_files_per_s']} files/s; 0 audio files opened); "
          f"rescan / baseline = {result['rescan_over_baseline']}x")
    print(json.dumps(result))
    if rescan_s > args.max_rescan_s:
        sys.exit(f"unchanged rescan took {rescan_s:.2f} s > {args.max_rescan_s} s")


if __name__ == "__main__":
    main()

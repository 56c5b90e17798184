"""`mfs extract` with nothing to do, as a user runs it, on a store of 10,000 tracks.

A synthetic folder library of `--files` tiny real WAVs (bench_scan's tree, so the default
rescan really walks and stats them), scanned into a store whose `fma518` and `musicnn-mtt`
features are all stored (bench_extract's real-shaped rows, written through the store's
writer). Then each command runs as its own process, `--repeats` times (median and best):

* baseline `mfs --help`: the CLI's process start-up and nothing else;
* `python -c 'import torch'`: what a spec's config hash cost while the extractor classes
  imported torch at module level; they no longer do (each family's `extractor.py` is
  torch-free, `tests/test_light_specs.py`), so `mfs extract` should stay well under it;
* `mfs extract bench` (rescan first, the default) and `mfs extract bench --no-rescan`:
  checks, rescan, plan, "nothing missing", and no Prefect server;
* the old path: a process calling the flow `extract-library` directly, as a deployment
  does (and as `mfs extract` did for every run): Prefect's temporary server, the flow's
  rescan, plan, and the run recorded in Prefect. One untimed run first creates Prefect's
  database, so the timed ones are the everyday cost, not the first-ever one.

Ratios are against the baseline, measured in the same run. The script fails if the CLI
started a Prefect server or planned any work.

    .venv/bin/python bench/bench_noop.py                  # 10,000 files, 3 repeats
    .venv/bin/python bench/bench_noop.py --files 2000 --repeats 5 --flow-repeats 1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_extract import write_features  # noqa: E402
from bench_scan import build_tree  # noqa: E402

from mfs.extractors import registry  # noqa: E402
from mfs.flows.prepare import DEFAULT_EXTRACTORS  # noqa: E402
from mfs.flows.scan import run_scan  # noqa: E402
from mfs.store import Store  # noqa: E402

MFS = Path(sys.executable).parent / "mfs"
FLOW = ("import sys; from mfs.flows.extract import extract_library; "
        "print(extract_library(sys.argv[1], list(sys.argv[3:]), store=sys.argv[2]))")


def build_store(work: Path, files: int) -> Store:
    """Scan `files` tiny WAVs as library `bench`, then store every default extractor's
    features for every track: nothing is missing."""
    build_tree(work / "music", files)
    store = Store(work / "store")
    run_scan(store, "bench", "folder", work / "music")
    track_ids = store.read_tracks("bench").column("track_id").to_pylist()
    with store.writing("bench features") as writer:
        for name in DEFAULT_EXTRACTORS:
            write_features(writer, registry.create(name), track_ids)
    return store


def timed_runs(command: list[str], repeats: int, env: dict[str, str],
               check: str) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of `repeats` runs of `command`, CPU counting its children (the
    Prefect server); each run must exit 0 and print `check`. CPU time is kept beside wall
    time because on a shared machine it is the steadier of the two."""
    times = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        times.append((time.perf_counter() - start, _children_cpu() - cpu))
        if done.returncode != 0 or check not in done.stdout + done.stderr:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n"
                             f"{done.stdout}{done.stderr}")
        if "mfs" in command[0] and "Starting temporary server" in done.stdout + done.stderr:
            raise SystemExit(f"{' '.join(command)} started a Prefect server")
    return times


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flow-repeats", type=int, default=2,
                        help="runs of the old path through the flow (each ~10 s or more)")
    parser.add_argument("--keep", type=Path, help="build the store here once and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="mfs-bench-noop-"))
    try:
        start = time.perf_counter()
        store = Store(work / "store")
        built = "reused"
        if not store.libraries():
            store = build_store(work, args.files)
            built = f"built in {time.perf_counter() - start:.1f} s"
        print(f"store: {len(store.read_tracks('bench'))} tracks, "
              f"{len(list(store.features_dir.rglob('*.parquet')))} feature parts ({built})")
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
        env.pop("PREFECT_API_URL", None)
        root, extractors = str(store.root), list(DEFAULT_EXTRACTORS)
        flow = [sys.executable, "-c", FLOW, "bench", root, *extractors]
        timed_runs(flow, 1, env, "'planned': 0")  # untimed: creates Prefect's database
        rows = {
            "mfs --help (baseline)": timed_runs([str(MFS), "--help"], args.repeats, env,
                                                "Usage"),
            "python -c 'import torch'": timed_runs(
                [sys.executable, "-c", "import torch; print('torch')"], args.repeats, env,
                "torch"),
            "mfs extract bench": timed_runs(
                [str(MFS), "extract", "bench", "--store", root], args.repeats, env,
                "nothing missing"),
            "mfs extract bench --no-rescan": timed_runs(
                [str(MFS), "extract", "bench", "--no-rescan", "--store", root], args.repeats,
                env, "nothing missing"),
            "flow extract-library (old path)": timed_runs(flow, args.flow_repeats, env,
                                                          "'planned': 0"),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)


def print_table(rows: dict[str, list[tuple[float, float]]]) -> None:
    """Median wall and CPU seconds per command, and their ratios to the baseline's."""
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in rows.items()}
    base_wall, base_cpu = medians["mfs --help (baseline)"]
    print("| command | median wall s | median CPU s | wall runs (s) | wall / baseline | "
          "CPU / baseline |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        wall, cpu = medians[name]
        listed = ", ".join(f"{w:.2f}" for w, _ in runs)
        print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {listed} | {wall / base_wall:.1f}x | "
              f"{cpu / base_cpu:.1f}x |")
    old, new = medians["flow extract-library (old path)"], medians["mfs extract bench"]
    print(f"old path / mfs extract: {old[0] / new[0]:.1f}x wall, {old[1] / new[1]:.1f}x CPU")

if __name__ == "__main__":
    main()

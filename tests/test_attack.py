"""The attack: 20 random SIGKILLs mid-extraction, then a re-run, leave exactly one row per
(track, extractor, config), no temporary files, every Parquet file readable, sane `runs`
rows and no orphaned process.

Most kills, and the re-run, hit `run_extract` in processes forked from one "zygote" that
imported everything once (a fresh Python costs 10-20 s of imports on a busy machine, a
fork costs nothing). One kill is of the real `mfs extract` command with its own temporary
Prefect server, as a user runs it: its server must not outlive it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from conftest import MFS, invoke, write_audio

from mfs.store import Store
from mfs.store.lock import read_holder

SEED = 20
KILLS = 20
CLIPS = 200  # enough work that kills keep landing mid-run (a run of all takes ~25 s)
EXTRACTORS = ["fma518", "musicnn-mtt"]
LIBRARY = "clips"
ORPHAN_GRACE_S = 2.0  # a child noticing its parent's death may take a moment to exit

# Imports everything once and scans the library, then forks one extraction per line read;
# prints the child's pid, reaps it and prints its exit status. Small parts, flushed often,
# so kills land between, before and during part writes.
ZYGOTE = """
import os, sys
from pathlib import Path
from mfs.extractors import registry
from mfs.flows import extract
from mfs.flows.scan import run_scan
from mfs.store import Store
specs = {extractors!r}
for spec in specs:
    registry.create_from_spec(spec)  # import the model modules before forking
run_scan(Store({store!r}), {library!r}, "folder", Path({music!r}))
print("ready", flush=True)
extract.SECONDS_PER_PART = 0.3
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            settings = extract.ExtractSettings(batch_size=2, tracks_per_part=4, device="cpu")
            extract.run_extract(Store({store!r}), {library!r}, specs, settings)
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def test_random_sigkills_then_a_rerun_leave_a_clean_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for i in range(CLIPS):
        write_audio(tmp_path / "music" / f"clip{i:03d}.wav", seconds=3.0, freq=300 + 7 * i)
    rng = random.Random(SEED)
    killed: list[int] = []
    spawned: list[tuple[int, int]] = []  # (pid, start time) of every killed process's child
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE.format(extractors=EXTRACTORS, store=str(store.root),
                                             library=LIBRARY, music=str(tmp_path / "music"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert zygote.stdout.readline().strip() == "ready"
        killed += kill_real_command(store, rng, spawned)
        for _ in range(KILLS - 1):
            killed += kill_forked_run(zygote, store, rng, spawned)
        time.sleep(ORPHAN_GRACE_S)
        orphans = [command_line(pid) for pid, start in spawned if alive(pid, start)]
        # What the kills left: only hidden temporaries, which no reader's glob matches
        # and the next writer deletes.
        assert all(tmp.name.startswith(".") for tmp in store.root.rglob("*.tmp"))
        assert rerun_status(zygote) == 0, "the clean re-run failed (traceback above)"
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
        for pid, start in spawned:  # never leave a process behind, whatever failed
            if alive(pid, start):
                os.kill(pid, signal.SIGKILL)
    writers = assert_one_row_per_key(store)
    assert not list(store.root.rglob("*.tmp")), "temporary files left after a clean run"
    assert not (store.root / ".lock").exists()
    assert_runs_sane(store, killed, writers)
    # Checked last, so that everything above is checked too while this one fails. A
    # temporary Prefect server (uvicorn) here means `mfs extract` does not yet take its
    # server down with it when it is killed (parent-death signal).
    assert not orphans, f"children of SIGKILLed extractions outlived them: {orphans}"


def kill_real_command(store: Store, rng: random.Random,
                      spawned: list[tuple[int, int]]) -> list[int]:
    """Start `mfs extract`, wait until it extracts (holds the lock for it), SIGKILL it a
    random moment later, and note its children."""
    command = [str(MFS), "extract", LIBRARY, "--extractor", ",".join(EXTRACTORS),
               "--device", "cpu", "--store", str(store.root)]
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MFS_STORE")}
    log = store.root.parent / "mfs-extract.log"  # a file: an orphan would hold a pipe open
    with log.open("w") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=output,
                                env={**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    deadline = time.monotonic() + 120
    while not (read_holder(store.root).get("pid") == proc.pid
               and read_holder(store.root).get("purpose", "").startswith("extract")):
        if proc.poll() is not None:
            raise AssertionError(f"mfs extract ended before extracting: {log.read_text()}")
        assert time.monotonic() < deadline, "mfs extract never started extracting"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 2.0))
    return sigkill(proc.pid, spawned, proc.wait)


def kill_forked_run(zygote: subprocess.Popen, store: Store, rng: random.Random,
                    spawned: list[tuple[int, int]]) -> list[int]:
    """Fork one `run_extract` from the zygote and SIGKILL it at a random moment: half the
    time up to 2 s after it took the store's lock (planning, loading a model, first
    batches), else up to 0.7 s after it wrote its first part (extracting, writing the next
    part). Waiting for the lock, not a fixed time after the fork, keeps the kills inside
    runs however slow a loaded machine is."""
    parts_before = len(feature_parts(store))
    zygote.stdin.write("go\n")
    zygote.stdin.flush()
    pid = int(zygote.stdout.readline())
    start = int((_stat(pid) or [0] * 20)[19])
    deadline = time.monotonic() + 60
    if rng.random() < 0.5:
        while (read_holder(store.root).get("pid") != pid and alive(pid, start)
               and time.monotonic() < deadline):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0))
    else:
        while (len(feature_parts(store)) == parts_before and alive(pid, start)
               and time.monotonic() < deadline):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.7))
    return sigkill(pid, spawned, lambda: -os.WTERMSIG(int(zygote.stdout.readline())))


def feature_parts(store: Store) -> list[Path]:
    return list(store.features_dir.rglob("*.parquet"))


def rerun_status(zygote: subprocess.Popen) -> int:
    """Fork one more extraction, let it finish, and return its exit status."""
    zygote.stdin.write("go\n")
    zygote.stdin.flush()
    zygote.stdout.readline()  # its pid
    return int(zygote.stdout.readline())


def sigkill(pid: int, spawned: list[tuple[int, int]], reap: Callable[[], int]) -> list[int]:
    """SIGKILL `pid` alone (its children are not signalled: they must not outlive it on
    their own), after noting its descendants. `reap` waits for it and returns its exit
    code; returns [pid] if the kill is what ended it, [] if it had finished first."""
    spawned += descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return [pid] if reap() == -signal.SIGKILL else []


def assert_one_row_per_key(store: Store) -> set[str]:
    """Read every Parquet file itself (not the de-duplicating views): all readable, and
    each (track, extractor, config) stored exactly once, for every ok track. Returns the
    run_ids that wrote feature rows."""
    keys: collections.Counter = collections.Counter()
    writers: set[str] = set()
    for part in store.root.rglob("*.parquet"):
        table = pq.read_table(part)  # raises on a torn or damaged file
        if part.is_relative_to(store.features_dir):
            keys.update(zip(*(table.column(c).to_pylist()
                              for c in ("track_id", "extractor", "config_hash")), strict=True))
            writers.update(table.column("run_id").to_pylist())
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert not duplicates
    tracks = pq.read_table(store.tracks_dir / f"{LIBRARY}.parquet").to_pylist()
    ok = {t["track_id"] for t in tracks if t["status"] == "ok"}
    assert len(ok) == CLIPS
    assert {(track, extractor) for track, extractor, _ in keys} == {
        (track, extractor) for track in ok for extractor in EXTRACTORS}
    return writers


def assert_runs_sane(store: Store, killed: list[int], writers: set[str]) -> None:
    """Per run: one `started` row, then at most one end row; a killed run has only its
    `started` row (if it got that far), `mfs status` calls it interrupted, and some
    killed runs kept the parts they wrote before the kill."""
    rows = [row for part in sorted(store.runs_dir.glob("*.parquet"))
            for row in pq.read_table(part).to_pylist()]
    by_run = collections.defaultdict(list)
    for row in rows:
        by_run[row["run_id"]].append(row)
    for run_id, run_rows in by_run.items():
        statuses = sorted(r["status"] for r in run_rows)
        assert statuses in (["started"], ["completed", "started"]), (run_id, statuses)
        if run_rows[0]["kind"] == "extract" and run_rows[0]["pid"] in killed:
            assert statuses == ["started"], f"killed run {run_id} recorded an end"
    extract_runs = [rs for rs in by_run.values() if rs[0]["kind"] == "extract"]
    dead = [rs for rs in extract_runs if rs[0]["pid"] in killed]
    assert len(dead) >= KILLS // 2, f"{len(dead)} of {KILLS} kills landed inside a run"
    assert any(rs[0]["run_id"] in writers for rs in dead), "no kill landed mid-extraction"
    assert sorted(r["status"] for r in extract_runs[-1]) == ["completed", "started"]
    code, out, err = invoke("status", "--format", "json", "--store", str(store.root))
    assert code == 0, err
    shown = {r["run_id"]: r["status"] for r in json.loads(out)["runs"]}
    assert "running" not in shown.values()
    assert {shown[rs[0]["run_id"]] for rs in dead if rs[0]["run_id"] in shown} == {
        "interrupted"}


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every living descendant of `pid`, from /proc."""
    children = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children[int(stat[1])].append((int(entry.name), int(stat[19])))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def alive(pid: int, start: int) -> bool:
    """Whether the process `pid` that started at `start` still runs (zombies are dead)."""
    stat = _stat(pid)
    return stat is not None and int(stat[19]) == start and stat[0] != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return f"pid {pid}"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, ..., starttime."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()

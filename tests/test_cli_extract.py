"""`mfs extract` / `mfs backfill` as a user types them: specs, checks before Prefect,
one-line errors, every registered extractor on real audio, nothing-to-do without Prefect."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import invoke, run_mfs, shared, write_audio
from tiny_models import TINY, hf_extractors, tiny_hf_home

from mfs.analysis.selection import stored_layout
from mfs.extractors import registry
from mfs.store import Store
from mfs.store.views import view_name

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def scanned(tmp_path: Path) -> Path:
    """A store with one scanned folder library `lib` of one synthetic clip."""
    write_audio(tmp_path / "music" / "one.wav", seconds=1.0, freq=700)
    store = tmp_path / "store"
    code, _, err = invoke("scan", str(tmp_path / "music"), "--kind", "folder", "--name", "lib",
                          "--store", str(store))
    assert code == 0, err
    return store


def stored_config(con, extractor: str) -> str:
    return con.execute(f'SELECT any_value(config) FROM "{view_name(extractor)}"').fetchone()[0]


def fill(path: Path) -> None:
    """Write zeros to `path` until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["extract", "lib", "--extractor", "musicnn-mtt:hop_seconds=abc"],
     "error: extractor spec 'musicnn-mtt:hop_seconds=abc': hop_seconds must be a number or "
     "null, got 'abc'"),
    (["extract", "lib", "--extractor", "musicnn-mtt:hop_seconds=-1"],
     "error: extractor spec 'musicnn-mtt:hop_seconds=-1': musicnn hop_seconds=-1 must be "
     "positive"),
    (["extract", "lib", "-e", "fma518", "-e", "fma518:hop_length=1.5"],
     "error: extractor spec 'fma518:hop_length=1.5': hop_length must be an integer, got '1.5'"),
    (["extract", "lib", "-e", "fma518:keep_windows=true"],
     "error: extractor spec 'fma518:keep_windows=true': fma518 has no windows to keep: "
     "keep_windows is a field of windowed neural extractors' configs only, not of "
     "Fma518Config (hop_length, n_fft)"),
    (["extract", "lib", "-e", "musicnn-mtt:keep_windows=yes"],
     "error: extractor spec 'musicnn-mtt:keep_windows=yes': keep_windows must be true or "
     "false, got 'yes'"),
    (["extract", "lib", "--extractor", "musicnn-msd:model=MTT_musicnn"],
     "error: extractor spec 'musicnn-msd:model=MTT_musicnn': musicnn-msd runs MSD_musicnn, "
     "not MTT_musicnn"),
    (["extract", "lib", "--extractor", "fma518,x[/red]y"],
     "error: unknown extractor 'x[/red]y'; known extractors: "
     + ", ".join(sorted(registry.EXTRACTORS))
     + ", hear:<module> (any HEAR 2021 API module on the path)"),
    (["extract", "nolib", "--extractor", "fma518"],
     "error: unknown library 'nolib' in store {store} (known: lib); scan it first: "
     "mfs scan PATH --kind KIND --name nolib"),
    (["backfill", "nolib", "--extractor", "fma518"],
     "error: unknown library 'nolib' in store {store} (known: lib); scan it first: "
     "mfs scan PATH --kind KIND --name nolib"),
    (["backfill"], "error: backfill needs --extractor NAME (see `mfs extractors`)"),
])
def test_bad_requests_are_one_line_before_prefect(scanned: Path, args: list[str],
                                                  expected: str) -> None:
    code, out, err = invoke(*args, "--store", str(scanned))
    assert code == 1 and out == ""
    assert one_error_line(err) == expected.format(store=scanned)


def test_device_and_precision_errors_come_before_prefect(scanned: Path) -> None:
    """float16 off CUDA, and a --device this machine lacks, are one line before any
    Prefect server starts (they used to fail inside the flow after ~20 s)."""
    result = run_mfs("extract", "lib", "-e", "musicnn-mtt:precision=float16",
                     "--device", "cpu", "--store", str(scanned))
    assert result.returncode == 1
    assert result.stderr == ("error: extractor musicnn-mtt: precision=float16 runs only on "
                             "CUDA, not on cpu; use bfloat16 or float32\n")
    if not torch_cuda_available():
        result = run_mfs("extract", "lib", "-e", "fma518", "--device", "cuda",
                         "--store", str(scanned))
        assert result.returncode == 1
        assert result.stderr == ("error: --device cuda: CUDA is not available on this "
                                 "machine\n")


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def test_spec_error_as_the_installed_command_prints_it(scanned: Path) -> None:
    result = run_mfs("extract", "lib", "--extractor", "musicnn-mtt:hop_seconds=abc",
                     "--store", str(scanned))
    assert result.returncode == 1
    assert result.stderr == ("error: extractor spec 'musicnn-mtt:hop_seconds=abc': "
                             "hop_seconds must be a number or null, got 'abc'\n")


def test_debug_shows_the_traceback(scanned: Path) -> None:
    with pytest.raises(ValueError, match="hop_seconds must be a number"):
        invoke("--debug", "extract", "lib", "-e", "musicnn-mtt:hop_seconds=abc",
               "--store", str(scanned))


def test_held_writer_lock_is_one_line_naming_the_holder(scanned: Path) -> None:
    with Store(scanned).writing("extract lib (test)"):
        for rescan in ("--rescan", "--no-rescan"):
            code, _, err = invoke("extract", "lib", "-e", "fma518", rescan,
                                  "--store", str(scanned))
            line = one_error_line(err)
            assert code == 1 and f"pid {os.getpid()}" in line
            assert "extract lib (test)" in line and "since" in line
    assert not (scanned / ".lock").exists()


def test_every_registered_extractor_runs_with_its_default_config(
        tmp_path: Path, models_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Iterates the registry, so a newly registered model is covered without a new test.
    Models in Hugging Face's layout come from a cache of tiny random models of their real
    classes (tests/tiny_models.py), found by hub id offline as the real ones would be;
    checkpoint models (CNN14, VGGish) from an `$MFS_MODELS` tree of random weights in the
    official layouts."""
    hf_env = {**tiny_hf_home(tmp_path / "hf"), "MFS_MODELS": str(models_tree)}
    for key, value in hf_env.items():
        monkeypatch.setenv(key, value)
    names = sorted(registry.all_extractors())
    extractors = {name: registry.create(name) for name in names}
    unavailable = {n: r for n, e in extractors.items() if (r := e.unavailable_reason())}
    if unavailable:
        pytest.skip(f"extractors not runnable here: {unavailable}")
    music = tmp_path / "music"
    music.mkdir()
    for clip in ("blues/blues.00000.flac", "jazz/jazz.00001.flac"):
        shutil.copy(shared("gtzan-excerpts/genres") / clip, music)
    store = tmp_path / "store"
    env = {"PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", **hf_env}
    scan = run_mfs("scan", str(music), "--kind", "folder", "--name", "lib", "--store", str(store))
    assert scan.returncode == 0, scan.stderr
    args = ["--store", str(store)] + [a for name in names for a in ("--extractor", name)]
    result = run_mfs("extract", "lib", *args, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    for name in names:
        assert f"{name}: 2 extracted, 0 failed" in result.stdout

    con = Store(store).connect()
    for name, extractor in extractors.items():
        stored = con.execute(f'SELECT track_id, config_hash, config FROM "{view_name(name)}"'
                             ).fetchall()
        assert len(stored) == 2, name  # one row per track
        default = extractor.default_config().to_dict()
        assert {(h, json.loads(c) == default) for _, h, c in stored} == {
            (extractor.config_hash(), True)}, name
        _, dim_names = stored_layout(Store(store), name, extractor.config_hash())
        for output in extractor.outputs:
            if output.feature_names:
                assert dim_names[f"{output.name}_mean" if output.pooling else output.name] == list(
                    output.feature_names), name
    assert json.loads(stored_config(con, "musicnn-msd"))["model"] == "MSD_musicnn"
    msd_hash = extractors["musicnn-msd"].config_hash()
    _, msd_names = stored_layout(Store(store), "musicnn-msd", msd_hash)
    assert msd_names["tags_mean"][:3] == ["rock", "pop", "alternative"]

    again = run_mfs("extract", "lib", *args, env=env)
    assert again.returncode == 0, again.stderr
    for name in names:
        assert f"{name}: 0 extracted" in again.stdout and "nothing missing" in again.stdout
    assert "Starting temporary server" not in again.stdout + again.stderr


def test_every_hugging_face_extractor_has_a_tiny_model_for_the_tests() -> None:
    """So the registry test above can run each one through its real loading path."""
    assert sorted(hf_extractors()) == sorted(set(hf_extractors()) & set(TINY))


def test_disk_full_during_extract_is_one_line_naming_the_store(tmp_path: Path) -> None:
    """A real ENOSPC (a full tmpfs) inside the Prefect task: one line, no traceback."""
    device = tmp_path / "small"
    device.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(device)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        write_audio(tmp_path / "music" / "one.wav", seconds=1.0, freq=700)
        store = device / "store"
        env = {"PYTHONPATH": str(TESTS), "PREFECT_HOME": str(tmp_path / "prefect"),
               "MFS_EXTRACTORS": "energy=energy_extractor:EnergyExtractor",
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
        assert run_mfs("scan", str(tmp_path / "music"), "--kind", "folder", "--name", "lib",
                       "--store", str(store)).returncode == 0
        before = sorted(p.name for p in store.rglob("*.parquet"))
        fill(device / "filler")
        result = run_mfs("extract", "lib", "-e", "energy", "--no-rescan", "--store",
                         str(store), env=env, timeout=300)
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert errors == [f"error: no space left on the device of store {store} ([Errno 28] "
                          "No space left on device); free some space and run again: what "
                          "was stored is kept"], result.stderr
        assert "Traceback" not in result.stderr
        (device / "filler").unlink()
        assert sorted(p.name for p in store.rglob("*.parquet")) == before
    finally:
        subprocess.run(["umount", str(device)], check=False)


def test_extractors_repeat_or_comma_and_library_is_positional(tmp_path: Path) -> None:
    """An empty library has nothing missing: the summary per extractor, in the order given,
    with no Prefect server started."""
    (tmp_path / "empty").mkdir()
    store = str(tmp_path / "store")
    assert invoke("scan", str(tmp_path / "empty"), "--kind", "folder", "--name", "lib",
                  "--store", store)[0] == 0
    wanted = ["musicnn-mtt", "fma518", "musicnn-msd"]
    extractors = ["-e", "musicnn-mtt", "--extractor", "fma518,musicnn-msd", "--store", store]
    result = run_mfs("extract", "lib", *extractors)
    assert result.returncode == 0, result.stderr
    assert "Starting temporary server" not in result.stderr
    outputs = [result.stdout] + [invoke(*command, *extractors)[1]
                                 for command in (["backfill", "lib"], ["backfill"])]
    for out in outputs:
        assert [line.split(":")[0] for line in out.splitlines()] == wanted
        assert out.count("(nothing missing)") == 3

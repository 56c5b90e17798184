"""Per-window outputs (`keep_windows=true`, issue 15): one row per window with its start
time in `windows/<extractor>/<config_hash>/`, read through `<view>_windows`, on real GTZAN
clips and the real musicnn model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import invoke, run_mfs, shared
from test_light_specs import DEFAULT_HASHES

from mfs.extractors import registry
from mfs.extractors.pipeline import load_mono
from mfs.extractors.windowing import window_samples, window_starts
from mfs.flows import extract
from mfs.flows.plan import plan_missing
from mfs.flows.scan import run_scan
from mfs.store import Store
from mfs.store.health import damaged_files, holdings

KEEP = "musicnn-mtt:keep_windows=true"
CLIPS = ("blues/blues.00000.flac", "jazz/jazz.00001.flac")


def musicnn(spec: str = KEEP):
    """The extractor of `spec`, or skip when musicnn's weights are not installed here."""
    extractor = registry.create_from_spec(spec)
    if reason := extractor.unavailable_reason():
        pytest.skip(f"musicnn cannot run here: {reason}")
    return extractor


def cut_clip(source: Path, target: Path, seconds: float) -> Path:
    """The first `seconds` of a real clip, as FLAC at its own rate."""
    audio, rate = sf.read(source, dtype="float32")
    sf.write(target, audio[: int(seconds * rate)], rate)
    return target


def music_folder(tmp_path: Path, clips: tuple[str, ...] = CLIPS) -> Path:
    """Real GTZAN excerpts, and the first 2 s of the first as a track shorter than one
    musicnn window."""
    genres = shared("gtzan-excerpts/genres")
    music = tmp_path / "music"
    music.mkdir()
    for clip in clips:
        shutil.copy(genres / clip, music)
    cut_clip(genres / clips[0], music / "short.flac", 2.0)
    return music


def expected_starts(path: Path, extractor) -> list[float]:
    """The window starts the pipeline promises (`window_starts`), in seconds."""
    rate = extractor.sample_rate
    window, hop = window_samples(extractor.windowing, rate)
    n_samples = len(load_mono(path, rate)[0])
    return [start / rate for start in window_starts(n_samples, window, hop)]


def window_rows(con, config_hash: str) -> dict[str, list[tuple]]:
    """Each track's window rows in window order: (window, start_s, duration_s, tags)."""
    found = con.execute(
        """SELECT t.path, w.window, w.start_s, w.duration_s, w.tags FROM musicnn_mtt_windows w
        JOIN tracks t USING (track_id) WHERE w.config_hash = ? ORDER BY t.path, w.window""",
        [config_hash]).fetchall()
    rows: dict[str, list[tuple]] = {}
    for path, *row in found:
        rows.setdefault(path, []).append(tuple(row))
    return rows


def test_keep_windows_through_the_cli(tmp_path: Path) -> None:
    """`mfs extract LIB -e musicnn-mtt:keep_windows=true` beside the default config: one
    window row per window at the starts `window_starts` gives (the end-aligned last one and
    a 2 s track's single padded one included), whose mean tags are the feature row's
    `tags_mean`; the default config keeps its hash and writes no windows; a re-run does
    nothing."""
    keep, default = musicnn(), musicnn("musicnn-mtt")
    music = music_folder(tmp_path)
    store = tmp_path / "store"
    env = {"PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    scan = run_mfs("scan", str(music), "--kind", "folder", "--name", "lib", "--store", str(store))
    assert scan.returncode == 0, scan.stderr
    args = ["extract", "lib", "-e", KEEP, "-e", "musicnn-mtt", "--store", str(store)]
    result = run_mfs(*args, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{KEEP}: 3 extracted, 0 failed" in result.stdout
    assert "musicnn-mtt: 3 extracted, 0 failed" in result.stdout

    keep_hash = keep.config_hash()
    assert default.config_hash() == DEFAULT_HASHES["musicnn-mtt"] != keep_hash
    windows_dir = store / "windows" / "musicnn-mtt"
    assert [p.name for p in windows_dir.iterdir()] == [keep_hash]  # none for the default

    con = Store(store).connect()
    rows = window_rows(con, keep_hash)
    assert sorted(rows) == sorted(p.name for p in music.iterdir())
    window_s = window_samples(keep.windowing, keep.sample_rate)[0] / keep.sample_rate
    for path, windows in rows.items():
        starts = expected_starts(music / path, keep)
        assert [w[0] for w in windows] == list(range(len(starts))), path
        assert [w[1] for w in windows] == pytest.approx(starts, abs=1e-9), path
        if path == "short.flac":
            assert len(windows) == 1 and windows[0][2] == pytest.approx(2.0, abs=1e-3)
        else:
            assert len(windows) > 1 and starts[-1] - starts[-2] < window_s  # end-aligned
            assert [w[2] for w in windows] == pytest.approx([window_s] * len(windows))
        mean_tags, n_windows = con.execute(
            """SELECT f.tags_mean, f.n_windows FROM musicnn_mtt f JOIN tracks t
            USING (track_id) WHERE t.path = ? AND f.config_hash = ?""",
            [path, keep_hash]).fetchone()
        assert n_windows == len(windows)
        tags = np.array([w[3] for w in windows], dtype=np.float64)
        np.testing.assert_allclose(tags.mean(axis=0), mean_tags, rtol=0, atol=1e-6)
    assert_same_provenance(con, keep_hash)
    assert json.loads(con.execute(
        "SELECT any_value(config) FROM musicnn_mtt_windows").fetchone()[0])["keep_windows"]

    parts = sorted(store.rglob("*.parquet"))
    again = run_mfs(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{KEEP}: 0 extracted" in again.stdout and "nothing missing" in again.stdout
    assert sorted(p for p in store.rglob("*.parquet") if "runs" not in p.parts) == [
        p for p in parts if "runs" not in p.parts]


def assert_same_provenance(con, config_hash: str) -> None:
    """Every window row names the run, model, precision and time of its track's row."""
    differing = con.execute(
        """SELECT count(*) FROM musicnn_mtt_windows w JOIN musicnn_mtt f
        USING (track_id, config_hash) WHERE config_hash = ? AND (
            w.run_id != f.run_id OR w.model_hash != f.model_hash OR w.precision != f.precision
            OR w.created_at != f.created_at OR w.versions != f.versions
            OR w.config != f.config OR w.extractor != f.extractor)""",
        [config_hash]).fetchone()[0]
    assert differing == 0


@pytest.fixture
def short_library(tmp_path: Path) -> Store:
    """A store with one scanned library `lib` of a real 2 s clip (one musicnn window)."""
    musicnn()
    music = tmp_path / "music"
    music.mkdir()
    genres = shared("gtzan-excerpts/genres")
    cut_clip(genres / CLIPS[1], music / "short.flac", 2.0)
    store = Store(tmp_path / "store")
    run_scan(store, "lib", "folder", music)
    return store


def test_windows_without_their_feature_part_are_redone(short_library: Store,
                                                       monkeypatch) -> None:
    """A run killed after a track's window part but before its feature part: the planner
    redoes the track, and the view shows only the windows of the stored feature row."""
    store = short_library
    real = extract.StoreWriter.append_features

    def killed(*_args, **_kwargs):
        raise OSError("killed between the window part and the feature part")

    monkeypatch.setattr(extract.StoreWriter, "append_features", killed)
    with pytest.raises(OSError, match="killed"):
        extract.run_extract(store, "lib", [KEEP])
    keep_hash = musicnn().config_hash()
    assert len(list((store.windows_dir / "musicnn-mtt" / keep_hash).glob("*.parquet"))) == 1
    assert len(plan_missing(store, "lib", musicnn(), 3).todo) == 1

    monkeypatch.setattr(extract.StoreWriter, "append_features", real)
    extract.run_extract(store, "lib", [KEEP])
    assert len(list((store.windows_dir / "musicnn-mtt" / keep_hash).glob("*.parquet"))) == 2
    con = store.connect()
    count, start_s, duration_s = con.execute(
        "SELECT count(*), any_value(start_s), any_value(duration_s) FROM musicnn_mtt_windows"
    ).fetchone()
    assert (count, start_s) == (1, 0.0) and duration_s == pytest.approx(2.0, abs=1e-3)
    assert_same_provenance(con, keep_hash)
    assert plan_missing(store, "lib", musicnn(), 3).todo == []


def test_damaged_window_part_is_left_out_and_its_tracks_redone(short_library: Store) -> None:
    """A damaged window part is skipped by the view and listed by `mfs doctor` like any
    other; once moved aside, the planner redoes its tracks (features and windows)."""
    store = short_library
    extract.run_extract(store, "lib", [KEEP])
    [part] = (store.windows_dir / "musicnn-mtt").glob("*/*.parquet")
    part.write_bytes(part.read_bytes()[:100])  # cut short
    assert store.connect().execute("SELECT count(*) FROM musicnn_mtt_windows").fetchone() == (0,)
    [damage] = damaged_files(store.root)
    assert damage.path == part and holdings(damage).startswith("musicnn-mtt windows, config ")

    code, out, err = invoke("repair", "--store", str(store.root))
    assert code == 0, err
    assert "held musicnn-mtt windows, config " in out and "musicnn_mtt_windows" in out
    assert not part.exists()
    assert len(plan_missing(store, "lib", musicnn(), 3).todo) == 1
    extract.run_extract(store, "lib", [KEEP])
    assert store.connect().execute("SELECT count(*) FROM musicnn_mtt_windows").fetchone() == (1,)


def test_a_whole_track_neural_extractor_has_no_windows_to_keep() -> None:
    """A neural extractor that reads whole tracks refuses keep_windows when made, in one
    line, rather than storing one "window" per track."""
    from dataclasses import dataclass

    from mfs.extractors.base import NeuralConfig, NeuralExtractor, Windowing

    @dataclass(frozen=True)
    class WholeConfig(NeuralConfig):
        pass

    class Whole(NeuralExtractor):
        name, config_class = "whole", WholeConfig
        sample_rate, windowing, outputs = 16000, Windowing(), ()

        def build(self):
            raise NotImplementedError

        def embed(self, windows, sample_rate, lengths=None):
            raise NotImplementedError

    assert Whole(WholeConfig()).config.to_dict() == {}
    with pytest.raises(ValueError, match="^whole reads whole tracks: it has no windows to keep"):
        Whole(WholeConfig(keep_windows=True))

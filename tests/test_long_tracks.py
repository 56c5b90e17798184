"""Streaming extraction: windows, resampling and pooling block by block equal the in-memory
path, and an hour-long track is processed in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from energy_extractor import EnergyConfig, EnergyExtractor

from mfs.audio.decode import open_audio
from mfs.extractors import pipeline
from mfs.extractors.base import Windowing
from mfs.extractors.fma518 import features as fma518_features
from mfs.extractors.fma518.extractor import Fma518
from mfs.extractors.fma518.segments import segments
from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_rows, load_mono
from mfs.extractors.windowing import WindowStream, cut_windows, window_starts

TESTS = Path(__file__).resolve().parent
STATS = ("mean", "std", "max")  # EnergyExtractor's pooling


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)


def write_m4a(path: Path, audio: np.ndarray, rate: int) -> Path:
    """AAC in MP4: a format libsndfile cannot read, so the FFmpeg reader is exercised."""
    layout = "stereo" if audio.shape[1] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout=layout)
        for start in range(0, len(audio), 1024):
            chunk = np.ascontiguousarray(audio[start : start + 1024].T)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def in_memory_row(path: Path, extractor: EnergyExtractor, chunk: int = 1024) -> dict:
    """The non-streaming reference: decode all, down-mix, one-shot resample, cut every
    window, embed them, pool over all windows at once."""
    with open_audio(path) as audio:
        data, rate = np.concatenate(list(audio.blocks())), audio.sample_rate
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != extractor.sample_rate:
        mono = soxr.resample(mono, rate, extractor.sample_rate, quality="HQ")
    windows = cut_windows(mono, extractor.sample_rate, extractor.windowing)
    outputs = np.concatenate([
        extractor.embed(torch.from_numpy(windows[i : i + chunk]), extractor.sample_rate)
        ["energy"].double().numpy() for i in range(0, len(windows), chunk)])
    pooled = {"mean": outputs.mean(0), "std": outputs.std(0), "max": outputs.max(0)}
    return {"n_windows": len(windows), "seconds": len(mono) / extractor.sample_rate,
            **{f"energy_{stat}": pooled[stat] for stat in STATS}}


def assert_rows_match(row: dict, expected: dict) -> None:
    assert row["n_windows"] == expected["n_windows"]
    assert row["seconds"] == pytest.approx(expected["seconds"], abs=1e-9)
    for stat in STATS:
        np.testing.assert_allclose(row[f"energy_{stat}"], expected[f"energy_{stat}"],
                                   rtol=1e-5, atol=1e-6)


def run(extractor: EnergyExtractor, paths: dict[str, Path], batch_size: int
        ) -> dict[str, dict | TrackFailure]:
    extractor.load(torch.device("cpu"))
    builder = RowBuilder(extractor, "test-run")
    results: dict[str, dict | TrackFailure] = {}
    for item in extract_rows(builder, paths.items(), batch_size=batch_size, workers=2):
        key = item.track_id if isinstance(item, TrackFailure) else item["track_id"]
        assert key not in results, f"{key} reported twice"
        results[key] = item
    return results


@pytest.mark.parametrize("n_samples", [1, 99, 100, 101, 250, 1000, 1037])
@pytest.mark.parametrize(("window", "hop"), [(100, 100), (100, 30), (100, 130)])
@pytest.mark.parametrize("block", [1, 7, 64, 5000])
def test_window_stream_cuts_the_same_windows(n_samples, window, hop, block):
    samples = np.arange(1, n_samples + 1, dtype=np.float32)
    stream = WindowStream(window, hop)
    streamed = [w for i in range(0, n_samples, block) for w in stream.feed(samples[i : i + block])]
    streamed += stream.finish()
    expected = cut_windows(samples, 1000, Windowing(window / 1000, hop / 1000))
    np.testing.assert_array_equal(np.stack([w for _, w in streamed]), expected)
    assert [start for start, _ in streamed] == window_starts(n_samples, window, hop)
    assert stream.n_samples == n_samples and stream.emitted == len(expected)


@pytest.mark.parametrize("n_samples", [1, 20, 47, 48, 49, 100, 311])
@pytest.mark.parametrize("block", [1, 5, 64, 1000])
def test_segments_cover_every_frame_once_with_context(n_samples, block):
    """Segments of 3 frames at hop 4 with 8 samples of context: the kept frames are the
    track's 1 + n // hop frames, in order, once each; a segment is the track's samples from
    its start, and holds every sample within the margin of each kept frame's centre."""
    hop, frames, margin = 4, 3, 8
    samples = np.arange(n_samples, dtype=np.float32)
    parts = list(segments(np.split(samples, range(block, n_samples, block)), hop, frames,
                          margin))
    kept = []
    for part in parts:
        assert part.start % hop == 0
        np.testing.assert_array_equal(part.samples,
                                      samples[part.start : part.start + len(part.samples)])
        local = np.arange(1 + len(part.samples) // hop)[part.keep]
        track = local + part.start // hop
        assert track[0] == part.first_frame
        for t in track:
            lo, hi = max(0, t * hop - margin), min(n_samples, t * hop + margin)
            assert part.start <= lo and hi <= part.start + len(part.samples)
        kept += track.tolist()
    assert kept == list(range(1 + n_samples // hop))


@pytest.mark.parametrize(("rate", "channels", "target"),
                         [(44100, 2, 16000), (22050, 1, 16000), (8000, 6, 16000),
                          (16000, 2, None)])
def test_streamed_mono_equals_one_shot_decode(tmp_path, rate, channels, target):
    """Blocks of 65 536 frames, down-mixed and resampled as a stream, give the samples a
    whole-file down-mix and one-shot soxr resample give."""
    audio = noise(7.3, rate, channels)
    sf.write(tmp_path / "x.wav", audio, rate, subtype="FLOAT")
    mono, out_rate = load_mono(tmp_path / "x.wav", target)
    expected = audio.mean(axis=1, dtype=np.float32)
    if target is not None:
        expected = soxr.resample(expected, rate, target, quality="HQ")
    assert out_rate == (target or rate) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, expected, rtol=0, atol=1e-6)


def test_streamed_rows_equal_the_in_memory_path(tmp_path):
    """Tracks of every shape, windows of two tracks sharing batches of 3 across two decoding
    threads: each row equals pooling its in-memory windows."""
    extractor = EnergyExtractor(EnergyConfig(window_seconds=0.75))
    paths = {
        "short": tmp_path / "short.wav", "exact": tmp_path / "exact.flac",
        "tail": tmp_path / "tail.flac", "stereo44k": tmp_path / "stereo44k.wav",
    }
    sf.write(paths["short"], noise(0.3, 16000, seed=1), 16000)
    sf.write(paths["exact"], noise(3.0, 16000, seed=2), 16000)
    sf.write(paths["tail"], noise(10.1, 22050, seed=3), 22050)
    sf.write(paths["stereo44k"], noise(6.2, 44100, 2, seed=4), 44100, subtype="FLOAT")
    paths["aac"] = write_m4a(tmp_path / "aac.m4a", noise(5.5, 44100, 2, seed=5), 44100)
    rows = run(extractor, paths, batch_size=3)
    assert set(rows) == set(paths)
    for key, path in paths.items():
        assert_rows_match(rows[key], in_memory_row(path, extractor))
    assert rows["short"]["n_windows"] == 1 and rows["exact"]["n_windows"] == 4


def test_bad_samples_part_way_fail_only_that_track(tmp_path):
    """Windows of a track already went to the model when NaNs show up later in its file:
    the track is one failure, and the tracks sharing its batches still get rows."""
    rate = 16000
    bad = noise(20.0, rate)
    bad[-rate:] = np.nan
    paths = {"bad": tmp_path / "bad.wav", "good": tmp_path / "good.wav"}
    sf.write(paths["bad"], bad, rate, subtype="FLOAT")
    sf.write(paths["good"], noise(9.0, rate, seed=7), rate)
    rows = run(EnergyExtractor(), paths, batch_size=2)
    assert isinstance(rows["bad"], TrackFailure) and "NaN" in rows["bad"].reason
    assert_rows_match(rows["good"], in_memory_row(paths["good"], EnergyExtractor()))


LONG_TRACK_RUN = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, {tests!r})
    import torch
    from energy_extractor import EnergyExtractor
    from mfs.extractors.pipeline import RowBuilder, extract_rows

    def peak_bytes():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    extractor = EnergyExtractor()
    extractor.load(torch.device("cpu"))
    builder = RowBuilder(extractor, "long")
    list(extract_rows(builder, [("warm-up", {warm!r})]))  # threads, codecs, resampler loaded
    before = peak_bytes()
    [row] = list(extract_rows(builder, [("long", {long!r})], batch_size=16))
    print(json.dumps({{"growth": peak_bytes() - before, "n_windows": row["n_windows"],
                      "seconds": row["seconds"],
                      **{{k: row[k].tolist() for k in ("energy_mean", "energy_std",
                                                     "energy_max")}}}}))
""")


def test_hour_long_track_streams_in_bounded_memory(tmp_path):
    """60 minutes at 8 kHz (110 MiB decoded, 220 MiB at the extractor's 16 kHz): peak
    memory grows by a fraction of that, and the row equals pooling over all 3601 windows."""
    rate, minutes = 8000, 60
    long_path, warm_path = tmp_path / "hour.flac", tmp_path / "warm.flac"
    minute = 0.3 * np.sin(2 * np.pi * 220 * np.arange(60 * rate) / rate) + noise(60, rate)[:, 0]
    with sf.SoundFile(long_path, "w", rate, 1, subtype="PCM_16", compression_level=0) as out:
        for gain in np.linspace(0.2, 1.0, minutes):  # written a minute at a time
            out.write(gain * minute)
        out.write(minute[: rate // 2])  # a half-second tail: one end-aligned window
    sf.write(warm_path, noise(5.0, rate), rate)
    script = LONG_TRACK_RUN.format(tests=str(TESTS), warm=str(warm_path), long=str(long_path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    expected = in_memory_row(long_path, EnergyExtractor())  # while the child runs
    stdout, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    measured = json.loads(stdout.strip().splitlines()[-1])
    decoded_bytes = (minutes * 60 * rate + rate // 2) * 4  # float32 at the file's own rate
    assert measured["growth"] < decoded_bytes / 4, (
        f"peak RSS grew {measured['growth'] / 2**20:.0f} MiB for a track of "
        f"{decoded_bytes / 2**20:.0f} MiB decoded")
    assert expected["n_windows"] == 3601
    assert_rows_match({k: np.asarray(v) if k.startswith("energy") else v
                       for k, v in measured.items()}, expected)


def tone_and_noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A rising tone over noise: pitched enough for fma518's tunings and CQT."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (220 + 20 * t) * t)
    return (tone + noise(seconds, rate, seed=seed)[:, 0] / 4).astype(np.float32)


def test_track_read_in_passes_equals_the_whole_track(tmp_path, monkeypatch):
    """An extractor that reads blocks (fma518) gets a track over `HELD_SAMPLES` decoded
    pass by pass, and one under it decoded ahead by its worker: both rows equal the
    extractor on the track decoded whole, seconds included; a NaN part-way through a track
    read in passes is that track's failure only."""
    monkeypatch.setattr(pipeline, "HELD_SAMPLES", 50_000)
    monkeypatch.setattr(fma518_features, "WHOLE_FRAMES", 100)
    monkeypatch.setattr(fma518_features, "SEGMENT_FRAMES", 250)
    rate = 22050
    paths = {"long": tmp_path / "long.flac", "held": tmp_path / "held.wav",
             "bad": tmp_path / "bad.wav"}
    sf.write(paths["long"], tone_and_noise(20.0, rate, seed=8), rate)
    sf.write(paths["held"], tone_and_noise(2.0, rate, seed=9), rate)
    bad = tone_and_noise(8.0, rate, seed=10)
    bad[-rate:] = np.nan
    sf.write(paths["bad"], bad, rate, subtype="FLOAT")
    extractor = Fma518()
    extractor.load(torch.device("cpu"))
    rows = run(extractor, paths, batch_size=1)
    assert isinstance(rows["bad"], TrackFailure) and "NaN" in rows["bad"].reason
    for key in ("long", "held"):
        mono, _ = load_mono(paths[key], None)
        with torch.inference_mode():
            want = extractor.embed(torch.from_numpy(mono)[None], rate)["features"][0].numpy()
        assert rows[key]["seconds"] == pytest.approx(len(mono) / rate, abs=1e-9)
        assert rows[key]["n_windows"] == 1
        np.testing.assert_allclose(rows[key]["features"], want, rtol=1e-5, atol=1e-6)


FMA518_LONG_RUN = textwrap.dedent("""
    import json
    import torch
    from mfs.extractors.fma518.extractor import Fma518
    from mfs.extractors.pipeline import RowBuilder, extract_rows

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    extractor = Fma518()
    extractor.load(torch.device("cpu"))
    builder = RowBuilder(extractor, "long")
    list(extract_rows(builder, [("warm-up", {warm!r})]))
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak so far (imports, warm-up) := what is resident now
    before = status("VmRSS")
    [row] = list(extract_rows(builder, [("long", {long!r})]))
    print(json.dumps({{"growth": status("VmHWM") - before, "seconds": row["seconds"],
                      "finite": bool(all(v == v for v in row["features"]))}}))
""")


def test_fma518_long_track_in_bounded_memory(tmp_path):
    """20 minutes at 22.05 kHz (101 MiB decoded): fma518 through the pipeline grows peak
    memory by less than the decoded track and its frame features (the whole-track path
    took 7x the decoded track), holding a segment at a time and the track's frame
    features (bench/RESULTS.md, fma518 memory)."""
    rate, minutes = 22050, 20
    long_path, warm_path = tmp_path / "long.flac", tmp_path / "warm.flac"
    with sf.SoundFile(long_path, "w", rate, 1, subtype="PCM_16") as out:
        for minute in range(minutes):
            out.write(tone_and_noise(60.0, rate, seed=minute))
    sf.write(warm_path, tone_and_noise(5.0, rate, seed=99), rate)
    script = FMA518_LONG_RUN.format(warm=str(warm_path), long=str(long_path))
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    decoded_bytes = minutes * 60 * rate * 4
    # What may grow with the track is its frame features (~0.5 KB a frame of 512 samples,
    # README): 25 MiB here. The bound is the decoded track plus those; the whole-track path
    # took 7x the decoded track. (Growth measured 95-111 MiB: 111 in the full suite.)
    frame_bytes = minutes * 60 * rate // 512 * 512
    assert measured["seconds"] == pytest.approx(minutes * 60)
    assert measured["finite"]
    assert measured["growth"] < decoded_bytes + frame_bytes, (
        f"peak RSS grew {measured['growth'] / 2**20:.0f} MiB for a track of "
        f"{decoded_bytes / 2**20:.0f} MiB decoded and "
        f"{frame_bytes / 2**20:.0f} MiB of frame features")

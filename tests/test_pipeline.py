"""The shared extraction pipeline on synthetic edge cases and real clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from energy_extractor import EnergyConfig, EnergyExtractor

from mfs.extractors.base import OutputSpec, Windowing
from mfs.extractors.device import pick_device
from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_rows, load_mono
from mfs.extractors.windowing import cut_windows, window_starts
from mfs.store import Store
from mfs.store.columns import parse_column

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate, subtype="FLOAT" if path.suffix == ".wav" else None)
    return path


def extract(paths: dict[str, Path], extractor=None) -> dict[str, dict | TrackFailure]:
    extractor = extractor or EnergyExtractor()
    extractor.load(torch.device("cpu"))
    builder = RowBuilder(extractor, "test-run")
    out = {}
    for item in extract_rows(builder, paths.items(), batch_size=4):
        out[item.track_id if isinstance(item, TrackFailure) else item["track_id"]] = item
    return out


def test_windows_cover_the_whole_track_deterministically():
    assert window_starts(100, 30, 30) == [0, 30, 60, 70]
    assert window_starts(90, 30, 30) == [0, 30, 60]
    assert window_starts(10, 30, 30) == [0]
    windows = cut_windows(np.arange(10, dtype=np.float32), 10, Windowing(3.0, 3.0))
    assert windows.shape == (1, 30) and windows[0, 9] == 9 and windows[0, 10:].sum() == 0
    whole = cut_windows(np.ones(123, dtype=np.float32), 10, Windowing())
    assert whole.shape == (1, 123)


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8000, 44100, 96000])
def test_decode_downmixes_and_resamples(tmp_path, channels, rate):
    t = np.arange(rate * 2) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    audio = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    mono, out_rate = load_mono(write(tmp_path / "x.wav", audio, rate), 16000)
    assert out_rate == 16000 and mono.dtype == np.float32
    assert abs(len(mono) - 32000) <= 1
    assert np.sqrt(np.mean(mono[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_edge_cases_give_finite_features(tmp_path):
    rate = 16000
    t = np.arange(rate * 3) / rate
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    paths = {
        "silence": write(tmp_path / "silence.wav", np.zeros(rate * 3), rate),
        "clipped": write(tmp_path / "clipped.wav", np.clip(tone * 4, -1, 1), rate),
        "dc": write(tmp_path / "dc.wav", tone * 0.5 + 0.4, rate),
        "short": write(tmp_path / "short.wav", tone[: rate // 2], rate),
    }
    rows = extract(paths)
    for key in paths:
        assert np.all(np.isfinite(rows[key]["energy_mean"])), key
    assert rows["silence"]["energy_mean"].tolist() == [0.0, 0.0]
    assert rows["short"]["n_windows"] == 1 and rows["short"]["seconds"] == pytest.approx(0.5)
    assert rows["dc"]["energy_mean"][1] < rows["clipped"]["energy_mean"][1]  # DC kills crossings
    assert rows["clipped"]["energy_max"][0] > rows["dc"]["energy_max"][0] * 0.9


def test_corrupt_track_is_a_failure_and_the_rest_continue(tmp_path):
    rate = 16000
    good = write(tmp_path / "good.wav", np.ones(rate) * 0.1, rate)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + b"\x00garbage" * 100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    rows = extract({"a": good, "b": bad, "c": empty, "d": good})
    assert isinstance(rows["b"], TrackFailure) and "bad.flac" in rows["b"].reason
    assert isinstance(rows["c"], TrackFailure) and "\n" not in rows["c"].reason
    assert rows["a"]["energy_mean"][0] == pytest.approx(0.1, rel=1e-4)
    assert rows["d"]["n_windows"] == 1


def test_rows_carry_provenance(tmp_path):
    path = write(tmp_path / "x.wav", np.zeros(16000), 16000)
    extractor = EnergyExtractor(EnergyConfig(window_seconds=0.5))
    row = extract({"x": path}, extractor)["x"]
    assert row["extractor"] == "energy" and row["config_hash"] == extractor.config_hash()
    assert row["config_hash"] != EnergyExtractor().config_hash()
    assert row["model_hash"] == "none" and '"torch"' in row["versions"]
    assert row["n_windows"] == 2 and row["run_id"] == "test-run"


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_device_choice(monkeypatch, cuda: bool, mps: bool, expected: str) -> None:
    """`auto` takes CUDA, then MPS, then the CPU; a named device is checked, not assumed."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto") == pick_device(None) == torch.device(expected)
    assert pick_device("cpu") == torch.device("cpu")
    if cuda:
        assert pick_device("cuda:1") == torch.device("cuda", 1)
    else:
        with pytest.raises(ValueError, match="--device cuda:1: CUDA is not available"):
            pick_device("cuda:1")
    if mps:
        assert pick_device("mps") == torch.device("mps")
    else:
        with pytest.raises(ValueError, match="--device mps: MPS is not available"):
            pick_device("mps")


@pytest.mark.skipif(not (SHARED / "cc-music").is_dir(), reason="../shared/data/cc-music absent")
def test_real_stereo_ogg_at_44k():
    path = sorted((SHARED / "cc-music").glob("*.ogg"))[0]
    rows = extract({"real": path})
    info = sf.info(str(path))
    assert rows["real"]["seconds"] == pytest.approx(info.frames / info.samplerate, abs=0.01)
    assert 0.001 < rows["real"]["energy_mean"][0] < 1.0


class OneThreadEnergy(EnergyExtractor):
    """Records the torch thread count its model sees."""

    cpu_threads = 1
    seen: list[int] = []

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        self.seen.append(torch.get_num_threads())
        return super().embed(windows, sample_rate)


def test_model_runs_with_its_preferred_cpu_threads_then_restores(tmp_path):
    before = torch.get_num_threads()
    path = write(tmp_path / "x.wav", np.zeros(16000 * 3), 16000)
    extract({"x": path}, OneThreadEnergy())
    assert OneThreadEnergy.seen and set(OneThreadEnergy.seen) == {1}
    assert torch.get_num_threads() == before


class LayeredEnergy(EnergyExtractor):
    """Energy as a 3-layer output (layer l is (l + 1) × energy), like a transformer's."""

    name = "layered-energy"

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return (OutputSpec("energy", 2, ("mean", "max"), layers=3),)

    def embed(self, windows: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
        energy = super().embed(windows, sample_rate)["energy"]
        return {"energy": torch.stack([energy * (layer + 1) for layer in range(3)], dim=1)}


def test_layers_are_columns_a_view_column_and_metadata(tmp_path):
    """A per-layer output is stored one column per layer and statistic, read back by layer
    from the long view and from the files' `mfs.layers` metadata, never from names."""
    rate = 16000
    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate * 3) / rate)
    extractor = LayeredEnergy()
    row = extract({"lib:a": write(tmp_path / "a.wav", audio, rate)}, extractor)["lib:a"]
    columns = [f"energy_l{layer:02d}_{stat}" for stat in ("mean", "max") for layer in range(3)]
    assert [c for c in row if c.startswith("energy")] == columns
    assert [parse_column(c) for c in columns[:3]] == [("energy", layer, "mean")
                                                      for layer in range(3)]
    np.testing.assert_allclose(row["energy_l02_mean"], 3 * row["energy_l00_mean"], rtol=1e-6)

    store = Store(tmp_path / "store")
    builder = RowBuilder(extractor, "test-run")
    with store.writing("test") as writer:
        part = writer.append_features(extractor.name, extractor.config_hash(),
                                      builder.table([row]))
    assert json.loads(pq.read_schema(part).metadata[b"mfs.layers"]) == {"energy": 3}
    long = store.connect().execute(
        "SELECT output, layer, vector FROM features ORDER BY output, layer").fetchall()
    assert [(output, layer) for output, layer, _ in long] == [
        ("energy_max", 0), ("energy_max", 1), ("energy_max", 2),
        ("energy_mean", 0), ("energy_mean", 1), ("energy_mean", 2)]
    np.testing.assert_allclose(long[4][2], row["energy_l01_mean"])


class _LengthsSeen(EnergyExtractor):
    """The energy extractor, asking for the real lengths and recording them."""

    uses_lengths = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[int]] = []

    def embed(self, windows, sample_rate, lengths=None):
        self.seen.append(lengths.tolist())
        return super().embed(windows, sample_rate)


def test_embed_gets_each_windows_real_samples_only_when_it_asks(tmp_path):
    """Full windows and the end-aligned last one are all real; a track shorter than a
    window says how much of it is. An extractor without `uses_lengths` (written before
    it) is called as before: EnergyExtractor.embed has no `lengths`."""
    paths = {"long": write(tmp_path / "long.wav", np.ones(16000 * 5 // 2, np.float32), 16000),
             "short": write(tmp_path / "short.wav", np.ones(4000, np.float32), 16000)}
    extractor = _LengthsSeen()
    assert set(extract(paths, extractor)) == {"long", "short"}
    assert sorted(sum(extractor.seen, [])) == [4000, 16000, 16000, 16000]
    assert set(extract(paths)) == {"long", "short"}


def test_rows_record_none_for_an_extractor_without_a_model(tmp_path):
    out = extract({"a": write(tmp_path / "a.wav", np.ones(16000, np.float32), 16000)})
    assert out["a"]["precision"] == "none"


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512f", "avx512_bf16"}, "bfloat16"), ({"amx_bf16"}, "bfloat16"),
    ({"avx512f", "avx2"}, "float32"), (set(), "float32")])
def test_auto_precision_follows_the_cpu(monkeypatch, flags, expected):
    from mfs.extractors import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    assert precision.resolve_precision("auto", torch.device("cpu")) == expected
    assert precision.resolve_precision("float32", torch.device("cpu")) == "float32"
    assert precision.resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"


def test_auto_precision_on_this_cpu_reads_proc_cpuinfo():
    from mfs.extractors import precision

    native = bool(precision.cpu_flags() & set(precision.CPU_BF16_FLAGS))
    assert precision.resolve_precision("auto", torch.device("cpu")) == (
        "bfloat16" if native else "float32")


def test_float16_off_cuda_and_unknown_precisions_are_refused():
    from mfs.extractors.musicnn.extractor import MusicnnMTT
    from mfs.extractors.precision import resolve_precision
    from mfs.extractors.registry import create_from_spec

    with pytest.raises(ValueError, match="precision=float16 runs only on CUDA, not on cpu"):
        resolve_precision("float16", torch.device("cpu"))
    with pytest.raises(ValueError, match="float16 runs only on CUDA"):
        MusicnnMTT(create_from_spec("musicnn-mtt:precision=float16").config).load(
            torch.device("cpu"))
    with pytest.raises(ValueError, match="precision='half' unknown"):
        create_from_spec("musicnn-mtt:precision=half")
    spec = create_from_spec("musicnn-mtt:precision=auto")
    assert spec.config.precision == "auto" and spec.config_hash() != MusicnnMTT().config_hash()
    assert create_from_spec("musicnn-mtt:precision=float32").config_hash() == (
        MusicnnMTT().config_hash())

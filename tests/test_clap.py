"""`clap-music` (LAION CLAP, music) on tiny random models in the real layouts: our torch
log-mel against ClapFeatureExtractor for 10 s and repeat-padded shorter audio, the
extractor against transformers' ClapModel, deterministic 10 s windows over the whole
track, short tracks, bf16, prompt embeddings, and the CLI from scan to zero-shot bench."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import invoke, shared
from hf_checks import bf16_cosines, forward, pooled_row, real_clip, windows_of
from tiny_clap import save_clap
from tiny_models import rename_weights_to_pth, tiny_hf_home, write_hf_cache

from mfs.extractors import registry
from mfs.extractors.clap.frontend import ClapFrontEnd, ClapSettings
from mfs.flows.extract import run_extract
from mfs.store import Store

# An empty Hugging Face cache and no models root unless a test makes them.
pytestmark = pytest.mark.usefixtures("hf_offline")

WINDOW = 480000  # 10 s at 48 kHz


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clap") / "saved"
    save_clap(folder)
    return folder


@pytest.fixture(scope="module")
def jazz() -> np.ndarray:
    """A real clip at 48 kHz (GTZAN jazz.00001, 15 s)."""
    samples, rate = sf.read(shared("gtzan-excerpts/genres/jazz/jazz.00001.flac"),
                            dtype="float32")
    return soxr.resample(samples, rate, 48000).astype(np.float32)


def reference(folder: Path, audio: np.ndarray) -> np.ndarray:
    """transformers' own: ClapFeatureExtractor from the folder, ClapModel's audio tower
    and projection (unnormalised)."""
    from transformers import ClapFeatureExtractor, ClapModel

    model = ClapModel.from_pretrained(folder, local_files_only=True).eval()
    inputs = ClapFeatureExtractor.from_pretrained(folder)(audio, sampling_rate=48000,
                                                         return_tensors="pt")
    with torch.inference_mode():
        pooled = model.audio_model(**inputs).pooler_output
        return model.audio_projection(pooled)[0].numpy()


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
@pytest.mark.parametrize("seconds", [10.0, 2.0])
def test_log_mel_matches_clap_feature_extractor(jazz: np.ndarray, truncation: str,
                                                seconds: float) -> None:
    """10 s exactly: no crop, one spectrogram (stacked 4 times by fusion); 2 s: tiled 5
    times ("repeatpad") first. A 15 s input would be cropped at random: never given."""
    from transformers import ClapFeatureExtractor

    audio = jazz[: int(seconds * 48000)]
    expected = ClapFeatureExtractor(frequency_min=50, truncation=truncation)(
        audio, sampling_rate=48000, return_tensors="np")["input_features"][0]
    front = ClapFrontEnd(ClapSettings(truncation=truncation, frequency_min=50))
    ours = front(torch.from_numpy(audio)[None])[0].numpy()
    assert ours.shape == expected.shape == ((4 if truncation == "fusion" else 1), 1001, 64)
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)  # dB, down to -100


def test_found_in_the_hf_cache_and_a_models_tree_with_pth(saved: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          jazz: np.ndarray) -> None:
    audio = jazz[:WINDOW]
    expected = reference(saved, audio)
    snapshot = write_hf_cache(tmp_path / "hub", "laion/larger_clap_music", saved)
    extractor = registry.create("clap-music")
    assert (extractor.found.where, extractor.found.directory) == ("Hugging Face cache",
                                                                  snapshot)
    assert [(o.name, o.dim, o.pooling) for o in extractor.outputs] == [
        ("audio", 16, ("mean", "std")), ("audio_unit", 16, ("mean",))]
    extractor.load(torch.device("cpu"))
    ours = forward(extractor, torch.from_numpy(audio)[None])
    np.testing.assert_allclose(ours["audio"][0], expected, atol=1e-5)
    np.testing.assert_allclose(ours["audio_unit"][0], expected / np.linalg.norm(expected),
                               atol=1e-5)

    tree = tmp_path / "AI_models" / "CLAP" / "larger_clap_music"
    shutil.copytree(saved, tree)
    rename_weights_to_pth(tree)
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    from_tree = registry.create("clap-music")
    assert from_tree.found.where == "$MFS_MODELS"
    from_tree.load(torch.device("cpu"))
    again = forward(from_tree, torch.from_numpy(audio)[None])
    np.testing.assert_allclose(again["audio"], ours["audio"], atol=1e-6)
    assert np.array_equal(forward(from_tree, torch.from_numpy(audio)[None])["audio"],
                          again["audio"])  # deterministic: nothing is drawn at random


def test_whole_track_in_10_s_windows_and_a_short_track_alone(saved: Path,
                                                             tmp_path: Path) -> None:
    extractor = registry.create_from_spec(f"clap-music:model_path={saved}:precision=float32")
    extractor.load(torch.device("cpu"))
    long = real_clip(tmp_path, 25.0)
    starts, windows, length = windows_of(extractor, long)
    assert length == 1200000 and starts == [0, WINDOW, 1200000 - WINDOW]
    row = pooled_row(extractor, long)
    assert row["n_windows"] == 3
    per_window = forward(extractor, windows)
    np.testing.assert_allclose(row["audio_mean"], per_window["audio"].mean(0), atol=1e-5)
    np.testing.assert_allclose(row["audio_unit_mean"], per_window["audio_unit"].mean(0),
                               atol=1e-5)

    short = real_clip(tmp_path, 2.0)
    _, alone, length = windows_of(extractor, short)
    row = pooled_row(extractor, short)
    assert row["n_windows"] == 1
    # HF's own pipeline on those 2 s alone (repeat-padded to 10 s as the extractor pads)
    np.testing.assert_allclose(row["audio_mean"], reference(saved, alone[0, :length].numpy()),
                               atol=1e-5)


def test_bfloat16_stays_close_to_float32(saved: Path, jazz: np.ndarray) -> None:
    extractor = registry.create_from_spec(f"clap-music:model_path={saved}")
    extractor.load(torch.device("cpu"))
    cosines = bf16_cosines(extractor, torch.from_numpy(jazz[:WINDOW])[None])
    assert min(cosines.values()) >= 0.99, cosines


def test_text_embeddings_are_clap_models_own(saved: Path) -> None:
    from transformers import AutoTokenizer, ClapModel

    extractor = registry.create_from_spec(f"clap-music:model_path={saved}")
    prompts = ["This audio is a blues song.", "This audio is a jazz song."]
    ours = extractor.embed_texts(prompts)
    model = ClapModel.from_pretrained(saved, local_files_only=True).eval()
    tokens = AutoTokenizer.from_pretrained(saved)(prompts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        pooled = model.text_model(**tokens).pooler_output
        expected = model.text_projection(pooled).numpy()
    assert ours.shape == (2, 16)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert {p.name for p in extractor.text_files()} >= {"tokenizer.json", "vocab.json",
                                                        "model.safetensors"}


def test_cli_extract_then_zero_shot_bench(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """scan a 2-genre GTZAN folder of 3 clips, extract ast and clap-music (the extract-library
    recipe called directly: `mfs extract` through Prefect runs every registered extractor in
    test_cli_extract.py), then zero-shot genre through `mfs bench`: the leaderboard row has
    its CI and the prompt table one row per genre (tiny random CLAP: the accuracy means
    nothing)."""
    genres = tmp_path / "gtzan" / "genres"
    clips = {"blues": ["blues.00000.flac", "blues.00001.flac"], "jazz": ["jazz.00000.flac"]}
    for genre, names in clips.items():
        (genres / genre).mkdir(parents=True)
        for name in names:
            shutil.copy(shared("gtzan-excerpts/genres") / genre / name, genres / genre)
    store = str(tmp_path / "store")
    for key, value in tiny_hf_home(tmp_path / "hf").items():
        monkeypatch.setenv(key, value)
    code, _, err = invoke("scan", str(tmp_path / "gtzan"), "--kind", "gtzan", "--name", "g",
                          "--store", store)
    assert code == 0, err
    counts = run_extract(Store(store), "g", ["ast", "clap-music"])["extractors"]
    for name in ("ast", "clap-music"):
        assert (counts[name]["ok"], counts[name]["failed"]) == (3, 0)
    code, out, err = invoke(
        "sql", "SELECT len(c.audio_mean) AS clap, len(c.audio_unit_mean) AS unit, "
        "len(a.logits_max) AS logits, c.n_windows AS windows FROM clap_music c "
        "JOIN ast a USING (track_id) ORDER BY track_id", "--format", "json", "--store", store)
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3 and {(r["clap"], r["unit"], r["logits"]) for r in rows} == {
        (16, 16, 5)}
    assert all(r["windows"] == 2 for r in rows)  # 15-19 s: two 10 s windows each

    code, _, err = invoke("bench", "g", "--features", "clap-music", "--model", "zero-shot",
                          "--store", store)
    assert code == 0, err
    code, out, _ = invoke("sql", "SELECT model, accuracy_low, accuracy_high, n_test, "
                          "n_features_in, model_params FROM leaderboard", "--format", "json",
                          "--store", store)
    [entry] = json.loads(out)
    assert entry["model"] == "zero-shot" and entry["n_test"] == 3
    assert entry["n_features_in"] == 16  # audio_unit_mean alone
    assert 0 <= entry["accuracy_low"] <= entry["accuracy_high"] <= 1
    assert json.loads(entry["model_params"])["column"] == "audio_unit_mean"
    code, out, _ = invoke("sql", "SELECT genre, prompt, len(embedding) AS dim FROM prompts "
                          "ORDER BY genre", "--format", "json", "--store", store)
    assert json.loads(out) == [
        {"genre": g, "prompt": f"This audio is a {g} song.", "dim": 16} for g in clips]

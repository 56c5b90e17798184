"""`ast` (AST fine-tuned on AudioSet) on tiny random models in the real layouts: our torch
Kaldi fbank against ASTFeatureExtractor on real audio, the extractor against transformers'
own model, consecutive 10.24 s windows over the whole track, short tracks, bf16."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import shared
from hf_checks import bf16_cosines, forward, pooled_row, real_clip, windows_of
from tiny_ast import LABELS, save_ast
from tiny_models import rename_weights_to_pth, write_hf_cache

from mfs.extractors import registry
from mfs.extractors.ast.frontend import AstFrontEnd, FbankSettings

# An empty Hugging Face cache and no models root unless a test makes them.
pytestmark = pytest.mark.usefixtures("hf_offline")

WINDOW = 163840  # 10.24 s at 16 kHz


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ast") / "saved"
    save_ast(folder)
    return folder


@pytest.fixture(scope="module")
def jazz() -> np.ndarray:
    """A real clip at 16 kHz (GTZAN jazz.00001, 15 s)."""
    samples, rate = sf.read(shared("gtzan-excerpts/genres/jazz/jazz.00001.flac"),
                            dtype="float32")
    return soxr.resample(samples, rate, 16000).astype(np.float32)


def reference(folder: Path, audio: np.ndarray) -> dict[str, np.ndarray]:
    """transformers' own pipeline: ASTFeatureExtractor (numpy, no torchaudio here) and
    ASTForAudioClassification from the saved folder."""
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    model = ASTForAudioClassification.from_pretrained(folder, local_files_only=True).eval()
    inputs = ASTFeatureExtractor.from_pretrained(folder)(audio, sampling_rate=16000,
                                                        return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
        base = model.audio_spectrogram_transformer(**inputs)
    return {"logits": logits[0].numpy(), "pooled": base.pooler_output[0].numpy(),
            "patches": base.last_hidden_state[0, 2:].mean(0).numpy()}


@pytest.mark.parametrize("seconds", [10.24, 2.0, 0.02])
def test_fbank_matches_ast_feature_extractor_on_real_audio(jazz: np.ndarray,
                                                           seconds: float) -> None:
    from transformers import ASTFeatureExtractor

    audio = jazz[: int(seconds * 16000)]
    expected = ASTFeatureExtractor()(audio, sampling_rate=16000,
                                     return_tensors="np")["input_values"][0]
    ours = AstFrontEnd(FbankSettings())(torch.from_numpy(audio)[None])[0].numpy()
    assert ours.shape == expected.shape == (1024, 128)
    if seconds >= 0.025:  # a frame needs 25 ms: shorter audio has no frame in HF's path
        np.testing.assert_allclose(ours, expected, atol=5e-5, rtol=0)


def test_found_in_the_hf_cache_and_a_models_tree_with_pth(saved: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          jazz: np.ndarray) -> None:
    audio = jazz[:WINDOW]
    expected = reference(saved, audio)
    snapshot = write_hf_cache(tmp_path / "hub", "MIT/ast-finetuned-audioset-10-10-0.4593",
                              saved)
    extractor = registry.create("ast")
    assert extractor.unavailable_reason() is None
    assert (extractor.found.where, extractor.found.directory) == ("Hugging Face cache",
                                                                  snapshot)
    assert [(o.name, o.dim) for o in extractor.outputs] == [("pooled", 32), ("patches", 32),
                                                            ("logits", 5)]
    assert extractor.outputs[2].feature_names == LABELS  # config.json's id2label
    extractor.load(torch.device("cpu"))
    ours = forward(extractor, torch.from_numpy(audio)[None])
    for name, value in expected.items():
        np.testing.assert_allclose(ours[name][0], value, atol=1e-4, rtol=1e-4)

    tree = tmp_path / "AI_models" / "AST" / "ast-finetuned-audioset"
    shutil.copytree(saved, tree)
    rename_weights_to_pth(tree)
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    from_tree = registry.create("ast")
    assert from_tree.found.where == "$MFS_MODELS"
    assert [p.name for p in from_tree.found.weights] == ["pytorch_model.pth"]
    from_tree.load(torch.device("cpu"))
    again = forward(from_tree, torch.from_numpy(audio)[None])
    for name in ours:  # the same weights (BLAS may sum in another order on other memory)
        np.testing.assert_allclose(again[name], ours[name], atol=1e-6)
    twice = forward(from_tree, torch.from_numpy(audio)[None])
    assert all(np.array_equal(twice[name], again[name]) for name in ours)  # deterministic


def test_whole_track_in_consecutive_windows_and_a_short_track_alone(
        saved: Path, tmp_path: Path) -> None:
    extractor = registry.create_from_spec(f"ast:model_path={saved}:precision=float32")
    extractor.load(torch.device("cpu"))
    long = real_clip(tmp_path, 25.0)
    starts, windows, length = windows_of(extractor, long)
    assert length == 400000 and starts == [0, WINDOW, 400000 - WINDOW]
    row = pooled_row(extractor, long)
    assert row["n_windows"] == 3 and row["seconds"] == pytest.approx(25.0)
    per_window = forward(extractor, windows)
    np.testing.assert_allclose(row["pooled_mean"], per_window["pooled"].mean(0), atol=1e-5)
    np.testing.assert_allclose(row["logits_max"], per_window["logits"].max(0), atol=1e-5)
    assert np.array_equal(pooled_row(extractor, long)["patches_mean"], row["patches_mean"])

    short = real_clip(tmp_path, 2.0)
    _, alone, length = windows_of(extractor, short)
    assert length == 32000
    row = pooled_row(extractor, short)
    assert row["n_windows"] == 1
    expected = reference(saved, alone[0, :length].numpy())  # HF on those 2 s alone
    np.testing.assert_allclose(row["logits_mean"], expected["logits"], atol=1e-4)
    np.testing.assert_allclose(row["pooled_mean"], expected["pooled"], atol=1e-4)


def test_bfloat16_stays_close_to_float32(saved: Path, jazz: np.ndarray) -> None:
    extractor = registry.create_from_spec(f"ast:model_path={saved}")
    extractor.load(torch.device("cpu"))
    cosines = bf16_cosines(extractor, torch.from_numpy(jazz[:WINDOW])[None])
    assert min(cosines.values()) >= 0.99, cosines

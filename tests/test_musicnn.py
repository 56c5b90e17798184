"""musicnn in PyTorch against musicnn's documented outputs on its own example clip."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.mel import mel_filterbank
from mfs.extractors.musicnn import extractor as musicnn
from mfs.extractors.musicnn.extractor import MusicnnMSD, MusicnnMTT
from mfs.extractors.musicnn.network import LogMel, MusicnnNet, tf_state_dict
from mfs.extractors.musicnn.tf_checkpoint import CheckpointError
from mfs.extractors.registry import create
from mfs.extractors.windowing import cut_windows

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "musicnn-reference"
CLIP = "joram-moments_of_clarity-08-solipsism-59-88.mp3"

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="musicnn wheel not installed: .venv/bin/pip install --no-deps musicnn==0.1.0",
)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The reference clip, mono at 16 kHz."""
    if not (REFERENCE_DIR / CLIP).is_file():
        pytest.skip(f"reference clip not found at {REFERENCE_DIR} (shared test data absent)")
    import soundfile as sf
    import soxr

    audio, sample_rate = sf.read(REFERENCE_DIR / CLIP, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    return audio if sample_rate == 16000 else soxr.resample(audio, sample_rate, 16000)


def _reference(model: str) -> dict:
    results = json.loads((REFERENCE_DIR / "musicnn_reference_outputs.json").read_text())
    return results["results"][f"{CLIP}|{model}"]


def _window_tags(extractor_class: type[musicnn.Musicnn], clip: np.ndarray) -> np.ndarray:
    """Per-window tag likelihoods (n_windows, 50), windows cut as the pipeline cuts them."""
    extractor = extractor_class()
    extractor.load(torch.device("cpu"))
    windows = cut_windows(clip, extractor.sample_rate, extractor.windowing)
    return extractor.embed(torch.from_numpy(windows), extractor.sample_rate)["tags"].numpy()


def _top(tags: tuple[str, ...], likelihoods: np.ndarray, n: int) -> list[str]:
    return [tags[i] for i in np.argsort(-likelihoods, kind="stable")[:n]]


def test_filterbank_matches_librosa() -> None:
    """musicnn's front end uses fma518's mel filterbank: librosa's default, as musicnn's."""
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    np.testing.assert_allclose(mel_filterbank(16000.0, 512, 96), expected, atol=1e-7)
    np.testing.assert_array_equal(LogMel().filterbank.numpy(), mel_filterbank(16000.0, 512, 96))


def test_log_mel_matches_librosa_patch() -> None:
    """A 2.992 s window gives musicnn's 187-frame patch (librosa 0.7 reflect padding)."""
    librosa = pytest.importorskip("librosa")
    audio = np.random.default_rng(0).standard_normal(47872).astype(np.float32) * 0.1
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512,
                                         n_mels=96, pad_mode="reflect").T
    expected = np.log10(10000 * mel.astype(np.float32) + 1)[:187]
    got = LogMel()(torch.from_numpy(audio)[None])[0].numpy()
    assert got.shape == (187, 96)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_contract() -> None:
    extractor = create("musicnn-mtt")
    assert isinstance(extractor, MusicnnMTT)
    assert extractor.sample_rate == 16000
    assert extractor.windowing.seconds == extractor.windowing.hop_seconds == 2.992
    penultimate, tags = extractor.outputs
    assert (penultimate.name, penultimate.dim, penultimate.pooling) == ("penultimate", 200,
                                                                        ("mean", "max"))
    assert (tags.name, tags.dim, tags.pooling) == ("tags", 50, ("mean",))
    assert tags.feature_names is not None and tags.feature_names[:3] == ("guitar", "classical",
                                                                         "slow")
    assert create("musicnn-msd").outputs[1].feature_names[:2] == ("rock", "pop")
    assert extractor.config_hash() != create("musicnn-msd").config_hash()
    with pytest.raises(ValueError, match="musicnn-mtt runs MTT_musicnn"):
        MusicnnMTT(musicnn.MusicnnConfig("MSD_musicnn"))


def test_missing_wheel_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(musicnn.importlib.util, "find_spec", lambda name: None)
    extractor = MusicnnMTT()
    assert "run `.venv/bin/pip install --no-deps musicnn==0.1.0`" in (
        extractor.unavailable_reason() or "")
    assert extractor.model_files() == []
    with pytest.raises(ExtractorUnavailable, match="pip install --no-deps musicnn==0.1.0"):
        extractor.load(torch.device("cpu"))


def test_checkpoint_without_a_layer_names_file_and_variable() -> None:
    missing = r"ckpt/\.index: no variable .*batch_normalization/gamma"
    with pytest.raises(CheckpointError, match=missing):
        tf_state_dict(MusicnnNet(), {}, Path("ckpt/.index"))


@needs_wheel
def test_embed_shapes() -> None:
    extractor = MusicnnMSD()
    assert [f.name for f in extractor.model_files()] == [".index", ".data-00000-of-00001"]
    extractor.load(torch.device("cpu"))
    out = extractor.embed(torch.zeros(2, 47872), 16000)
    assert out["penultimate"].shape == (2, 200)
    assert out["tags"].shape == (2, 50)
    assert ((out["tags"] >= 0) & (out["tags"] <= 1)).all()


@needs_wheel
def test_mtt_reproduces_documented_tags(clip: np.ndarray) -> None:
    reference = _reference("MTT_musicnn")
    window_tags = _window_tags(MusicnnMTT, clip)
    n_patches = reference["taggram_shape"][0]
    # musicnn drops the track's tail; the pipeline adds one end-aligned window for it.
    assert len(window_tags) == n_patches + 1
    expected = np.array([reference["mean_likelihood"][t] for t in musicnn.MTT_TAGS])
    patch_mean = window_tags[:n_patches].mean(axis=0)
    assert np.abs(patch_mean - expected).max() < 0.01
    assert _top(musicnn.MTT_TAGS, patch_mean, 10) == reference["top10"]
    assert _top(musicnn.MTT_TAGS, window_tags.mean(axis=0), 10) == reference["top10"]


@needs_wheel
def test_msd_gives_plausible_tags(clip: np.ndarray) -> None:
    """An instrumental electronic clip: MSD tags electronic / instrumental / ambient first."""
    reference = _reference("MSD_musicnn")
    window_tags = _window_tags(MusicnnMSD, clip)
    patch_mean = window_tags[: reference["taggram_shape"][0]].mean(axis=0)
    expected = np.array([reference["mean_likelihood"][t] for t in musicnn.MSD_TAGS])
    assert np.abs(patch_mean - expected).max() < 0.01
    assert _top(musicnn.MSD_TAGS, window_tags.mean(axis=0), 3) == [
        "electronic", "instrumental", "ambient"]
    vocal = [musicnn.MSD_TAGS.index(t) for t in ("female vocalists", "male vocalists")]
    assert window_tags.mean(axis=0)[vocal].max() < 0.05


def _pipeline_row(extractor: musicnn.Musicnn, path: Path) -> dict:
    """The stored row of one file, extracted by the shared pipeline on the CPU."""
    from mfs.extractors.pipeline import RowBuilder, extract_rows

    extractor.load(torch.device("cpu"))
    (row,) = extract_rows(RowBuilder(extractor, "test-run"), [("t", path)])
    assert isinstance(row, dict), row
    return row


@needs_wheel
def test_bfloat16_runs_records_and_keeps_the_tags(clip: np.ndarray, tmp_path: Path) -> None:
    """bfloat16 (native on this CPU) is recorded with the row, in its own output, and its
    tags follow float32's; float32's default config and hash are those stored so far."""
    import soundfile as sf

    path = tmp_path / "clip.wav"
    sf.write(path, clip[: 16000 * 6], 16000, subtype="FLOAT")
    full = _pipeline_row(MusicnnMTT(), path)
    half = _pipeline_row(MusicnnMTT(musicnn.MusicnnConfig("MTT_musicnn", precision="bfloat16")),
                         path)
    assert (full["precision"], half["precision"]) == ("float32", "bfloat16")
    assert "precision" not in json.loads(full["config"])
    assert json.loads(half["config"])["precision"] == "bfloat16"
    assert half["config_hash"] != full["config_hash"]
    for column in ("tags_mean", "penultimate_mean"):
        a, b = np.asarray(full[column]), np.asarray(half[column])
        assert np.corrcoef(a, b)[0, 1] > 0.99, column
    assert np.abs(np.asarray(full["tags_mean"]) - np.asarray(half["tags_mean"])).max() < 0.05


@needs_wheel
def test_short_track_is_embedded_without_its_padding(clip: np.ndarray, tmp_path: Path) -> None:
    """A 2 s track gives the network's output on those 2 s alone, not on 2 s plus 0.99 s
    of the pipeline's zero padding (which the back end's mean over time would pool)."""
    import soundfile as sf

    from mfs.extractors.musicnn.network import load_network

    two_seconds = clip[16000 * 5 : 16000 * 7].copy()
    path = tmp_path / "short.wav"
    sf.write(path, two_seconds, 16000, subtype="FLOAT")
    row = _pipeline_row(MusicnnMTT(), path)
    assert row["n_windows"] == 1
    extractor = MusicnnMTT()
    net = load_network(extractor._files()[0], 50)
    with torch.inference_mode():
        penultimate, logits = net(LogMel()(torch.from_numpy(two_seconds)[None]))
    np.testing.assert_allclose(row["penultimate_mean"], penultimate[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(row["penultimate_max"], penultimate[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(row["tags_mean"], torch.sigmoid(logits)[0].numpy(), atol=1e-6)
    padded = cut_windows(two_seconds, 16000, extractor.windowing)
    with torch.inference_mode():
        _, padded_logits = net(LogMel()(torch.from_numpy(padded)))
    assert np.abs(torch.sigmoid(padded_logits)[0].numpy() - row["tags_mean"]).max() > 1e-3


@needs_wheel
def test_under_32_ms_of_audio_is_padded_to_two_frames() -> None:
    """The one unavoidable padding: the STFT needs more samples than it pads (N_FFT / 2)."""
    from mfs.extractors.musicnn.network import MIN_SAMPLES

    extractor = MusicnnMTT()
    extractor.load(torch.device("cpu"))
    windows = torch.zeros(2, 47872)
    windows[:, :100] = torch.randn(100)
    out = extractor.embed(windows, 16000, lengths=torch.tensor([100, MIN_SAMPLES]))
    torch.testing.assert_close(out["tags"][0], out["tags"][1])
    assert torch.isfinite(out["penultimate"]).all()

"""encodec-24khz: EnCodec's continuous latent, found offline in the layouts users have and
equal to what transformers' own EncodecModel computes (and quantises) on the same audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import shared
from tiny_encodec import save_encodec
from tiny_models import rename_weights_to_pth, write_hf_cache

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.encodec.extractor import Encodec24kHz, EncodecConfig
from mfs.extractors.pipeline import RowBuilder, extract_rows, load_mono
from mfs.extractors.registry import create, create_from_spec
from mfs.extractors.windowing import window_samples, window_starts

# An empty Hugging Face cache and no models root unless a test makes them.
pytestmark = pytest.mark.usefixtures("hf_offline")

HUB_ID = "facebook/encodec_24khz"
RATE = 24000
DIM = 16  # the tiny model's hidden_size (the real one's is 128)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("encodec") / "saved"
    save_encodec(folder)
    return folder


@pytest.fixture
def cached(saved: Path, tmp_path: Path) -> Path:
    """The tiny model in the Hugging Face cache under the real hub id."""
    return write_hf_cache(tmp_path / "hub", HUB_ID, saved)


def clip(genre: str = "blues", index: int = 0) -> Path:
    return shared("gtzan-excerpts/genres") / genre / f"{genre}.{index:05d}.flac"


def cut(tmp_path: Path, seconds: float, genre: str = "blues") -> Path:
    """The first `seconds` of a real clip, as a file of its own (at its own 22050 Hz)."""
    audio, rate = sf.read(clip(genre), dtype="float32")
    path = tmp_path / f"{genre}-{seconds}s.wav"
    sf.write(path, audio[: int(seconds * rate)], rate, subtype="FLOAT")
    return path


def loaded(config: EncodecConfig | None = None) -> Encodec24kHz:
    """The extractor in float32 unless `config` says otherwise: the checks against
    transformers' own model are exact only there."""
    extractor = Encodec24kHz(config or EncodecConfig(precision="float32"))
    extractor.load(torch.device("cpu"))
    return extractor


def rows(extractor: Encodec24kHz, paths: list[Path]) -> dict[str, dict]:
    builder = RowBuilder(extractor, "test")
    found = list(extract_rows(builder, [(p.stem, p) for p in paths], batch_size=4))
    assert all(isinstance(row, dict) for row in found), found
    return {row["track_id"]: row for row in found}


def transformers_latent(folder: Path, audio: np.ndarray) -> torch.Tensor:
    """The latent by transformers' public API alone: its feature extractor, then
    EncodecModel's encoder; checked to be the very tensor `encode` quantises."""
    from transformers import EncodecFeatureExtractor, EncodecModel

    inputs = EncodecFeatureExtractor.from_pretrained(folder)(
        raw_audio=audio, sampling_rate=RATE, return_tensors="pt")
    model = EncodecModel.from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        latent = model.encoder(inputs["input_values"])
        codes = model.encode(inputs["input_values"], inputs["padding_mask"]).audio_codes
        bandwidth = model.config.target_bandwidths[0]
        assert torch.equal(model.quantizer.encode(latent, bandwidth).transpose(0, 1), codes[0])
    return latent[0]  # (dim, frames)


def close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to float32 rounding (the summation order of the time-major encoder differs)."""
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert float(expected.abs().max()) > 1e-4  # not a vacuous match of zeros


def test_latent_from_the_hf_cache_is_transformers_encoder_output(saved: Path,
                                                                  cached: Path) -> None:
    audio, _ = load_mono(clip(), RATE)
    audio = audio[: 3 * RATE]
    extractor = loaded()
    assert (extractor.found.where, extractor.found.directory) == ("Hugging Face cache", cached)
    expected = transformers_latent(saved, audio)
    assert expected.shape == (DIM, 3 * 75)  # 75 Hz frames
    with torch.inference_mode():
        latent = extractor.model(torch.from_numpy(audio)[None, None])[0]
        out = extractor.embed(torch.from_numpy(audio)[None], RATE)
    # equal to float32 rounding: the extractor runs the same encoder time-major (encoder.py)
    close(latent, expected)
    close(out["latent_mean"][0], expected.mean(dim=1))
    close(out["latent_std"][0], expected.std(dim=1, correction=0))


def test_models_root_with_pth_weights(saved: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "AI_models" / "EnCodec" / "encodec_24khz"
    shutil.copytree(saved, tree)
    rename_weights_to_pth(tree)
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    extractor = loaded()
    assert (extractor.found.where, extractor.found.directory) == ("$MFS_MODELS", tree)
    assert [p.name for p in extractor.model_files()] == [
        "pytorch_model.pth", "config.json", "preprocessor_config.json"]
    audio, _ = load_mono(clip("jazz"), RATE)
    audio = audio[: 2 * RATE]
    with torch.inference_mode():
        latent = extractor.model(torch.from_numpy(audio)[None, None])[0]
    close(latent, transformers_latent(saved, audio))


def test_another_encodec_is_refused_in_one_line(saved: Path, tmp_path: Path) -> None:
    """encodec_48khz normalises and chunks before its encoder: not this extractor's latent."""
    folder = tmp_path / "normalising"
    shutil.copytree(saved, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "normalize": True}))
    extractor = create_from_spec(f"encodec-24khz:model_path={folder}")
    with pytest.raises(ExtractorUnavailable, match="normalize=True") as error:
        extractor.load(torch.device("cpu"))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("samples_22k", [660000, 661504, 661794, 675808])
def test_every_gtzan_length_gets_three_windows_covering_it(samples_22k: int) -> None:
    """GTZAN's clips run 29.93-30.65 s (661794 samples, 30.013 s, for most): each gets
    [0, 11], [10, 21] and one end-aligned window; no fourth window for a 13 ms tail."""
    n = round(samples_22k * RATE / 22050)
    window, hop = window_samples(create("encodec-24khz").windowing, RATE)
    starts = window_starts(n, window, hop)
    assert starts[:2] == [0, 10 * RATE] and len(starts) == 3
    assert starts[-1] + window == n
    covered = np.zeros(n, dtype=bool)
    for start in starts:
        covered[start : start + window] = True
    assert covered.all()


def test_rows_pool_the_windows_deterministically(cached: Path, tmp_path: Path) -> None:
    """A 4 s clip in 2 s windows every 1.5 s: [0, 2], [1.5, 3.5] and the end-aligned
    [2, 4]; the row pools their latents' statistics, and a second run gives the same
    bytes."""
    path = cut(tmp_path, 4.0)
    config = EncodecConfig(window_seconds=2.0, hop_seconds=1.5, precision="float32")
    extractor = loaded(config)
    first = rows(extractor, [path])[path.stem]
    again = rows(loaded(config), [path])[path.stem]
    assert first["n_windows"] == 3
    audio, _ = load_mono(path, RATE)
    windows = torch.from_numpy(np.stack([audio[start : start + 2 * RATE]
                                         for start in (0, 3 * RATE // 2, 2 * RATE)]))
    with torch.inference_mode():
        latent = extractor.model(windows[:, None])  # (3, dim, frames)
    means = latent.mean(dim=2).numpy()
    stds = latent.std(dim=2, correction=0).numpy()
    assert np.asarray(first["latent_mean_mean"]).shape == (DIM,)
    np.testing.assert_allclose(first["latent_mean_mean"], means.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(first["latent_mean_std"], means.std(axis=0), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(first["latent_std_mean"], stds.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    for column in ("latent_mean_mean", "latent_mean_std", "latent_std_mean"):
        assert np.array_equal(first[column], again[column])


def test_two_second_track_is_the_model_on_those_two_seconds(cached: Path,
                                                            tmp_path: Path) -> None:
    path = cut(tmp_path, 2.0, "jazz")
    extractor = loaded()
    row = rows(extractor, [path])[path.stem]
    audio, _ = load_mono(path, RATE)
    assert row["n_windows"] == 1 and len(audio) == 2 * RATE
    with torch.inference_mode():
        latent = extractor.model(torch.from_numpy(audio)[None, None])[0]
    assert latent.shape[1] == 150  # 2 s alone: no frames of padding
    np.testing.assert_allclose(row["latent_mean_mean"], latent.mean(dim=1), rtol=1e-6)
    np.testing.assert_allclose(row["latent_std_mean"], latent.std(dim=1, correction=0),
                               rtol=1e-6)


def test_bfloat16_is_close_to_float32(cached: Path, tmp_path: Path) -> None:
    path = cut(tmp_path, 3.0, "rock")
    columns = ("latent_mean_mean", "latent_std_mean")
    exact = rows(loaded(), [path])[path.stem]
    half_extractor = loaded(EncodecConfig(precision="bfloat16"))
    half = rows(half_extractor, [path])[path.stem]
    assert (half["precision"], exact["precision"]) == ("bfloat16", "float32")
    a = np.concatenate([exact[c] for c in columns])
    b = np.concatenate([half[c] for c in columns])
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.99


@pytest.mark.parametrize("samples", [100, 300, 5000, 24000, 24007])
def test_time_major_encoder_equals_transformers_at_any_length(samples: int) -> None:
    """The time-major encoder on transformers' loaded modules: equal to float32 rounding
    whatever the padding (lengths the strides divide, lengths that need extra right
    padding, inputs shorter than a kernel's padding), and within bfloat16's rounding
    under autocast."""
    from transformers import EncodecConfig as HFEncodecConfig
    from transformers import EncodecModel

    from mfs.extractors.encodec.encoder import TimeMajorEncodecEncoder

    torch.manual_seed(0)
    encoder = EncodecModel(HFEncodecConfig(num_filters=8, hidden_size=16,
                                           codebook_size=16)).eval().encoder
    ours = TimeMajorEncodecEncoder(encoder)
    audio = torch.randn(3, 1, samples) * torch.tensor([0.05, 0.3, 1.0])[:, None, None]
    with torch.inference_mode():
        expected, got = encoder(audio), ours(audio)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = ours(audio).float()
    cosine = torch.nn.functional.cosine_similarity(low.flatten(1), expected.flatten(1))
    assert float(cosine.min()) > 0.999


def test_an_encodec_of_another_layout_is_refused_in_one_line(tmp_path: Path) -> None:
    """A non-causal EnCodec (as encodec_48khz's encoder) is not the graph the time-major
    encoder computes: refused at load, naming the folder."""
    folder = tmp_path / "non-causal"
    save_encodec(folder, use_causal_conv=False)
    extractor = create_from_spec(f"encodec-24khz:model_path={folder}")
    with pytest.raises(ExtractorUnavailable, match="not causal") as error:
        extractor.load(torch.device("cpu"))
    assert str(folder) in str(error.value) and "\n" not in str(error.value)

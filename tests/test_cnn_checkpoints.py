"""panns-cnn14 and vggish: equal to the reference packages (panns-inference's `Cnn14`,
torchvggish's `VGG` + `waveform_to_examples`) on the same random full-size weights and
audio, loaded from the official file layouts through the product's lookup; one-line errors
for missing and misfitting files; both through the CLI.

Equivalence is tested at full size: the reference classes hard-code their widths, and a
narrower model of ours against a narrower copy of theirs would prove less. Full-size
random weights are written once per session (~600 MB on disk, ~20 s).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from cnn_weights import cnn14_state, write_labels
from conftest import shared

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.panns.extractor import FRONT_ENDS, Cnn14Config, PannsCnn14
from mfs.extractors.registry import create
from mfs.extractors.vggish.extractor import VGGish, VGGishConfig

CPU = torch.device("cpu")


@pytest.fixture
def models_env(models_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$MFS_MODELS at the test tree; home and torch hub cache empty."""
    monkeypatch.setenv("MFS_MODELS", str(models_tree))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return models_tree


@pytest.fixture(scope="session")
def panns_reference(tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    """panns_inference.models, imported with a home whose panns_data holds the labels CSV
    (the package reads it at import, and downloads it when absent)."""
    if importlib.util.find_spec("panns_inference") is None:
        pytest.skip("panns-inference not installed: pip install --no-deps panns-inference "
                    "torchlibrosa")
    home = tmp_path_factory.mktemp("panns-home")
    write_labels(home / "panns_data" / "class_labels_indices.csv")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        import panns_inference.models as models
    finally:
        os.environ["HOME"] = old or ""
    return models


@pytest.fixture(scope="session")
def vggish_reference() -> types.ModuleType:
    """torchvggish, with a stand-in for resampy (it resamples only audio not at 16 kHz,
    which these tests never give it)."""
    if importlib.util.find_spec("torchvggish") is None:
        pytest.skip("torchvggish not installed: pip install --no-deps torchvggish")
    if importlib.util.find_spec("resampy") is None:
        sys.modules.setdefault("resampy", types.ModuleType("resampy"))
    import torchvggish
    import torchvggish.torchvggish  # noqa: F401 - the module with `_vgg` and `Postprocessor`

    return torchvggish


@pytest.mark.parametrize("rate", [32000, 16000])
def test_cnn14_equals_panns_inference(rate: int, models_env: Path,
                                      panns_reference: types.ModuleType) -> None:
    """Same checkpoint file, same audio: the same embedding and probabilities; a window
    cut short equals the reference on its real samples alone."""
    front = FRONT_ENDS[rate]
    reference = panns_reference.Cnn14(sample_rate=rate, window_size=front.n_fft,
                                      hop_size=front.hop, mel_bins=64, fmin=50,
                                      fmax=front.fmax, classes_num=527)
    path = models_env / "PANNs" / "cnn14" / front.checkpoint
    reference.load_state_dict(torch.load(path, weights_only=True)["model"])
    reference.eval()
    extractor = PannsCnn14(Cnn14Config(sample_rate=rate))
    assert extractor.model_location() == f"$MFS_MODELS: {path}"
    extractor.load(CPU)
    audio = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 2 * rate))
                             .astype(np.float32) * 0.1)
    short = rate // 2
    with torch.inference_mode():
        ours = extractor.embed(audio, rate, lengths=torch.tensor([2 * rate, short]))
        full = reference(audio[:1])
        alone = reference(audio[1:, :short])
    for name, key in (("embedding", "embedding"), ("audioset", "clipwise_output")):
        expected = torch.cat([full[key], alone[key]])
        torch.testing.assert_close(ours[name], expected, rtol=1e-4, atol=1e-4)
    assert float(ours["embedding"].abs().mean()) > 0.1  # not a vacuous match of zeros


def test_vggish_equals_torchvggish(models_env: Path, vggish_reference: types.ModuleType
                                   ) -> None:
    """Windows cut by the pipeline's rule are the recipe's examples; raw and released
    (PCA, quantised) embeddings equal torchvggish's on the same files."""
    from mfs.extractors.windowing import cut_windows

    folder = models_env / "VGGish"
    reference = vggish_reference.torchvggish._vgg(postprocess=False)
    reference.load_state_dict(torch.load(folder / "vggish-10086976.pth", weights_only=True))
    reference.eval()
    post = object.__new__(vggish_reference.torchvggish.Postprocessor)
    pca = torch.load(folder / "vggish_pca_params-970ea276.pth", weights_only=False)
    post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
    post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()

    audio = np.random.default_rng(2).standard_normal(16000 * 3).astype(np.float32) * 0.1
    extractor = VGGish()
    extractor.load(CPU)
    windows = cut_windows(audio, 16000, extractor.windowing)
    with torch.inference_mode():
        ours = extractor.embed(torch.from_numpy(windows), 16000)
        examples = vggish_reference.waveform_to_examples(audio.astype(np.float64), 16000)
        raw = reference(examples.detach())
        released = post.postprocess(raw)
    count = len(examples)  # 3 examples; the pipeline adds one end-aligned window
    assert len(windows) == count + 1
    torch.testing.assert_close(ours["raw"][:count], raw, rtol=1e-4, atol=1e-4)
    # quantised: a value on a rounding boundary may land one step apart
    assert (ours["embedding"][:count] - released).abs().max() <= 1.0
    assert (ours["embedding"][:count] == released).float().mean() > 0.99


def test_a_30_s_clip_is_three_cnn14_windows_not_four() -> None:
    """CNN14's default 10.25 s windows fit GTZAN's 30.0-30.12 s clips and FMA's 29.98 s in
    3 windows at both rates; 10 s windows (version 1) made a 4th, end-aligned, of any clip
    a sample over 30 s: a third more compute for 0.01 s of audio."""
    import soundfile as sf

    from mfs.extractors.windowing import window_samples, window_starts

    clips = sorted(shared("gtzan-full/genres").glob("*/*.au"))
    lengths = [sf.info(path).frames / sf.info(path).samplerate for path in clips]
    assert len(lengths) == 10 and max(lengths) > 30.0
    for rate in FRONT_ENDS:
        window, hop = window_samples(PannsCnn14(Cnn14Config(sample_rate=rate)).windowing, rate)
        for seconds in [*lengths, 29.98]:
            assert len(window_starts(int(seconds * rate), window, hop)) == 3, (rate, seconds)
    old = PannsCnn14(Cnn14Config(window_seconds=10.0)).windowing
    assert len(window_starts(int(min(lengths) * 32000), *window_samples(old, 32000))) == 4


def test_missing_weights_name_the_file_and_every_place(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    reason = create("panns-cnn14").unavailable_reason()
    assert reason == (
        f"Cnn14_mAP=0.431.pth not found (looked in $MFS_MODELS: {tmp_path}/models/PANNs/cnn14; "
        f"$MFS_MODELS: {tmp_path}/models/PANNs; panns_inference: {tmp_path}/home/panns_data; "
        f"torch hub cache: {tmp_path}/torch/hub/checkpoints); put it in "
        "$MFS_MODELS/PANNs/cnn14/ or give weights=PATH in the extractor spec")
    assert "vggish-10086976.pth not found" in (create("vggish").unavailable_reason() or "")
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save({}, tmp_path / "torch" / "hub" / "checkpoints" / "vggish-10086976.pth")
    reason = create("vggish").unavailable_reason() or ""
    assert reason.startswith("vggish_pca_params-970ea276.pth not found")
    assert reason.endswith("; or pca=false to store the raw embedding only")
    assert VGGish(VGGishConfig(pca=False)).unavailable_reason() is None
    with pytest.raises(ExtractorUnavailable, match="weights=/nowhere.pth: no such file"):
        PannsCnn14(Cnn14Config(weights="/nowhere.pth")).found  # noqa: B018


def test_misfitting_checkpoints_are_one_line(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16 kHz checkpoint named as the 32 kHz one, a key missing, a VGGish file that is
    not one: each one line saying what differs."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_labels(tmp_path / "class_labels_indices.csv")
    state = cnn14_state(16000)
    del state["fc1.bias"]
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ExtractorUnavailable) as error:
        PannsCnn14(Cnn14Config(weights=str(path))).load(CPU)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: not a CNN14 32 kHz checkpoint")
    assert "missing fc1.bias" in message
    assert "logmel_extractor.melW (257, 64) (expected (513, 64))" in message
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "v.pth")
    with pytest.raises(ExtractorUnavailable, match=r"v\.pth: not a VGGish checkpoint: missing "
                       r"features\.0\.bias, .*wrong shapes: features\.0\.weight \(3,\)"):
        VGGish(VGGishConfig(pca=False, weights=str(tmp_path / "v.pth"))).load(CPU)


def test_vggish_runs_64_windows_per_call_unless_told() -> None:
    """A run that names no --batch-size gives vggish 64 windows per model call (its fastest
    on a CPU, bench/RESULTS.md), CNN14 and the rest 16; a named size is every extractor's."""
    from conftest import invoke

    from mfs.flows.settings import ExtractSettings

    vggish, cnn14 = create("vggish"), create("panns-cnn14")
    assert ExtractSettings().batch_size_for(vggish) == 64
    assert ExtractSettings().batch_size_for(cnn14) == 16
    assert ExtractSettings(batch_size=8).batch_size_for(vggish) == 8
    code, out, _ = invoke("extract", "--help")
    assert code == 0 and "vggish 64" in out

"""The HuBERT-graph extractors (mert-v1-95m, mert-v1-330m, hubert-large, wav2vec2-large) on
tiny random models in the real layouts (the HF cache by hub id; a `$MFS_MODELS` tree with
`.pth` weights; MERT's own checkpoint with remote-code files and legacy weight names),
through the product's finding, loading and pipeline code, held to a forward pass written
in plain torch (`hubert_reference.py`), on real GTZAN audio."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import invoke, shared
from hubert_reference import reference_statistics
from tiny_models import TINY, rename_weights_to_pth, tiny_hf_home, write_hf_cache

from mfs.extractors import registry
from mfs.extractors.base import ExtractorUnavailable, OutputSpec
from mfs.extractors.hubert.extractor import HubertFamily
from mfs.extractors.hubert.network import zero_mean_unit_var
from mfs.extractors.pipeline import RowBuilder, TrackFailure, extract_rows, load_mono
from mfs.extractors.precision import resolve_precision
from mfs.extractors.windowing import cut_windows
from mfs.flows.extract import run_extract
from mfs.store import Store

# An empty Hugging Face cache and no models root unless a test makes them.
pytestmark = pytest.mark.usefixtures("hf_offline")

NAMES = ("mert-v1-95m", "mert-v1-330m", "hubert-large", "wav2vec2-large")
STABLE = {"mert-v1-330m", "hubert-large"}  # pre-LN: a final layer norm after the last layer
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each extractor's tiny model, written once in its real checkpoint layout."""
    root = tmp_path_factory.mktemp("tiny")
    folders = {}
    for name in NAMES:
        folders[name] = root / name
        folders[name].mkdir()
        TINY[name](folders[name])
    return folders


@pytest.fixture(scope="module")
def clip() -> Path:
    return shared("gtzan-excerpts/genres") / "blues" / "blues.00000.flac"


def place(name: str, folder: Path, layout: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> HubertFamily:
    """The extractor `name` (default config) with its tiny model in the HF cache, or in a
    `$MFS_MODELS` tree under the folder researchers keep it in, weights renamed `.pth`."""
    extractor = registry.create(name)
    if layout == "hf-cache":
        write_hf_cache(tmp_path / "hub", extractor.source.hub_id, folder)
    else:
        tree = tmp_path / "AI_models" / extractor.source.folders[0]
        shutil.copytree(folder, tree)
        if (tree / "model.safetensors").exists():
            rename_weights_to_pth(tree)
        else:
            (tree / "pytorch_model.bin").rename(tree / "pytorch_model.pth")
        monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    return extractor


def checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tiny model's tensors and config.json, read without the product's code."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    if (folder / "model.safetensors").exists():
        return load_file(str(folder / "model.safetensors")), config
    return torch.load(folder / "pytorch_model.bin", weights_only=True), config


def reference(folder: Path, windows: np.ndarray | torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    state, config = checkpoint(folder)
    with torch.inference_mode():
        return reference_statistics(state, config, torch.as_tensor(windows), normalize=True)


def rows(extractor: HubertFamily, tracks: dict[str, Path]) -> dict[str, dict]:
    """Feature rows through the pipeline as `mfs extract` runs it (threads, batches,
    inference mode and the extractor's precision under autocast)."""
    found = {}
    for item in extract_rows(RowBuilder(extractor, "test"), tracks.items(), batch_size=4):
        assert not isinstance(item, TrackFailure), item
        found[item["track_id"]] = item
    return found


def test_normalisation_equals_wav2vec2_feature_extractor(clip: Path) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    audio, _ = load_mono(clip, 24000)
    windows = np.stack([audio[:24000 * 3], audio[24000 * 5 : 24000 * 8]])
    processor = Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=24000)
    expected = processor(list(windows), sampling_rate=24000, return_tensors="np").input_values
    ours = zero_mean_unit_var(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["hf-cache", "models-tree"])
@pytest.mark.parametrize("name", NAMES)
def test_every_layer_equals_the_reference_forward(name: str, layout: str, built: dict,
                                                  clip: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    extractor = place(name, built[name], layout, tmp_path, monkeypatch)
    expected_where = "Hugging Face cache" if layout == "hf-cache" else "$MFS_MODELS"
    assert extractor.found.where == expected_where
    if layout == "models-tree":
        assert [p.name for p in extractor.found.weights] == ["pytorch_model.pth"]
    # The tiny model's shape, read from its config.json: 2 layers + the input, 32 wide.
    assert extractor.outputs == (OutputSpec("hidden", 32, ("mean",), layers=3),
                                 OutputSpec("last_std", 32, ("mean",)))
    extractor.load(CPU)
    rate = extractor.sample_rate
    audio, _ = load_mono(clip, rate)
    windows = torch.from_numpy(np.stack([audio[: rate * 3], audio[rate * 4 : rate * 7]]))
    with torch.inference_mode():
        out = extractor.embed(windows, rate, lengths=torch.tensor([rate * 3] * 2))
        native = extractor.model(zero_mean_unit_var(windows), output_hidden_states=True)
    means, last_std = reference(built[name], windows)
    torch.testing.assert_close(out["hidden"], means, rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(out["last_std"], last_std, rtol=1e-4, atol=2e-5)
    # Layer L is the model's output; native transformers >= 5.16 puts the state before the
    # final layer norm of a pre-LN model at hidden_states[L], which layer L is not.
    torch.testing.assert_close(out["hidden"][:, -1], native.last_hidden_state.mean(1))
    if name in STABLE:
        assert not torch.allclose(out["hidden"][:, -1], native.hidden_states[-1].mean(1))


def test_mert_checkpoint_loads_without_its_remote_code(built: dict, tmp_path: Path) -> None:
    """MERT's folder as the hub has it: model_type `mert_model`, `auto_map` naming
    configuration_MERT/modeling_MERT (present, and raising if imported), legacy weight
    names; it loads into HubertModel and none of its code runs."""
    folder = built["mert-v1-95m"]
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "mert_model" and "auto_map" in config
    assert (folder / "modeling_MERT.py").is_file()
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert "encoder.pos_conv_embed.conv.weight_g" in state
    extractor = registry.create_from_spec(f"mert-v1-95m:model_path={folder}")
    extractor.load(CPU)
    assert type(extractor.model).__name__ == "HubertModel"
    assert not [m for m in sys.modules if "MERT" in m]
    # MERT's other graphs (deepnorm layers, CQT input) are not HuBERT's: refused, not run.
    deepnorm = tmp_path / "deepnorm"
    shutil.copytree(folder, deepnorm)
    (deepnorm / "config.json").write_text(json.dumps({**config, "deepnorm": True}))
    with pytest.raises(ExtractorUnavailable, match="deepnorm or CQT"):
        registry.create_from_spec(f"mert-v1-95m:model_path={deepnorm}").load(CPU)


def test_a_30_s_clip_is_three_windows_not_four() -> None:
    """The default windows fit GTZAN's 30.0-30.12 s clips (and FMA's 29.98 s) in 3 windows:
    10 s windows would add a 4th, end-aligned, for any clip a sample over 30 s."""
    from mfs.extractors.windowing import window_samples, window_starts

    clips = sorted(shared("gtzan-full/genres").glob("*/*.au"))
    lengths = [sf.info(path).frames / sf.info(path).samplerate for path in clips]
    assert max(lengths) > 30.1
    for name in NAMES:
        extractor = registry.create(name)
        rate = extractor.sample_rate
        window, hop = window_samples(extractor.windowing, rate)
        for seconds in [*lengths, 29.98]:
            assert len(window_starts(int(seconds * rate), window, hop)) == 3, (name, seconds)
    assert len(window_starts(int(30.013 * 24000), 240000, 240000)) == 4


@pytest.mark.parametrize("name", NAMES)
def test_rows_through_the_pipeline(name: str, built: dict, clip: Path, tmp_path: Path) -> None:
    """Shapes, whole-track coverage (every window's statistics, pooled), determinism, and
    a 2 s track embedded from its 2 s alone, all against the reference forward."""
    short = tmp_path / "short.flac"
    audio, native_rate = sf.read(clip, dtype="float32")
    sf.write(short, audio[: 2 * native_rate], native_rate)
    extractor = registry.create_from_spec(f"{name}:model_path={built[name]}:precision=float32")
    extractor.load(CPU)
    tracks = {"long": clip, "short": short}
    first, again = rows(extractor, tracks), rows(extractor, tracks)
    rate = extractor.sample_rate

    samples, _ = load_mono(clip, rate)
    windows = cut_windows(samples, rate, extractor.windowing)
    assert len(windows) == first["long"]["n_windows"] == 2  # 17.5 s: 0 s and end-aligned
    assert first["long"]["seconds"] == pytest.approx(len(samples) / rate)
    means, last_std = reference(built[name], windows)
    two_seconds, _ = load_mono(short, rate)
    short_means, short_std = reference(built[name], two_seconds[None])
    expected = {"long": (means.mean(0), last_std.mean(0)), "short": (short_means[0], short_std[0])}
    for track, (layer_means, std) in expected.items():
        row = first[track]
        assert {k for k in row if k.endswith("_mean")} == {
            "hidden_l00_mean", "hidden_l01_mean", "hidden_l02_mean", "last_std_mean"}
        for layer in range(3):
            np.testing.assert_allclose(row[f"hidden_l{layer:02d}_mean"], layer_means[layer],
                                       rtol=1e-4, atol=2e-5)
            np.testing.assert_array_equal(row[f"hidden_l{layer:02d}_mean"],
                                          again[track][f"hidden_l{layer:02d}_mean"])
        np.testing.assert_allclose(row["last_std_mean"], std, rtol=1e-4, atol=2e-5)
    assert first["short"]["n_windows"] == 1


@pytest.mark.parametrize("name", ["mert-v1-95m", "mert-v1-330m"])
def test_bfloat16_stays_close_to_float32(name: str, built: dict, clip: Path) -> None:
    results = {}
    for precision in ("float32", "bfloat16"):
        extractor = registry.create_from_spec(
            f"{name}:model_path={built[name]}:precision={precision}")
        extractor.load(CPU)
        assert extractor.precision == precision
        results[precision] = rows(extractor, {"clip": clip})["clip"]
    for column in ("hidden_l00_mean", "hidden_l01_mean", "hidden_l02_mean", "last_std_mean"):
        a, b = results["float32"][column], results["bfloat16"][column]
        assert not np.array_equal(a, b)  # bfloat16 did run
        assert np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) >= 0.99, column


def test_normalize_follows_the_preprocessor_config(built: dict, tmp_path: Path) -> None:
    folder = tmp_path / "mert"
    shutil.copytree(built["mert-v1-330m"], folder)
    spec = f"mert-v1-330m:model_path={folder}"
    assert registry.create_from_spec(spec).normalize is True
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(
        json.dumps({**preprocessor, "do_normalize": False}))
    assert registry.create_from_spec(spec).normalize is False
    assert registry.create_from_spec(spec + ":normalize=true").normalize is True
    (folder / "preprocessor_config.json").unlink()
    assert registry.create_from_spec(spec).normalize is True  # DEFAULT_NORMALIZE


def test_missing_and_wrong_models_are_one_line_before_any_flow(
        built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(tmp_path / "store")
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    code, out, err = invoke("extract", "lib", "-e", "mert-v1-95m", "--store", store)
    lines = (out + err).strip().splitlines()
    assert code == 1 and len(lines) == 1, out + err
    assert lines[0].startswith("error: extractor mert-v1-95m: model m-a-p/MERT-v1-95M not "
                               "found offline")
    assert str(tmp_path / "AI_models" / "MERT" / "MERT-v1-95M") in lines[0]
    code, out, err = invoke("extract", "lib", "-e",
                            f"hubert-large:model_path={built['mert-v1-95m']}", "--store", store)
    lines = (out + err).strip().splitlines()
    assert code == 1 and len(lines) == 1, out + err
    assert "holds a 'mert_model' model (config.json model_type), expected 'hubert'" in lines[0]


def test_layer_sweeps_expand_to_one_feature_set_per_layer() -> None:
    from mfs.analysis.benchmark import bench_configs
    from mfs.analysis.selection import _matches, expand_layer_sweeps

    assert expand_layer_sweeps(["a:layer=0-2+b", "c"]) == [
        "a:layer=0+b", "a:layer=1+b", "a:layer=2+b", "c"]
    configs = bench_configs("lib", ["m:layer=3-4"], ["logreg"])
    assert [c.features for c in configs] == [("m:layer=3",), ("m:layer=4",)]
    with pytest.raises(ValueError, match="sweeps layers twice"):
        expand_layer_sweeps(["a:layer=0-1+b:layer=0-1"])
    with pytest.raises(ValueError, match="is empty"):
        expand_layer_sweeps(["a:layer=3-1"])
    with pytest.raises(ValueError, match="only mfs bench --features expands"):
        _matches("hidden_l00_mean", "layer=0-2")  # export, stats: one layer


def test_cli_extract_then_bench_a_layer_and_a_layer_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mfs scan`, the extract-library recipe with mert-v1-95m on real GTZAN clips (called
    directly: `mfs extract` through Prefect runs every registered extractor in
    test_cli_extract.py), the stored layout read back with `mfs sql`, `mfs extract` with
    nothing to do, then `mfs bench` on one layer and on a sweep over every layer."""
    genres = tmp_path / "genres"
    for genre in ("blues", "jazz"):
        (genres / genre).mkdir(parents=True)
        for i in range(3):
            name = f"{genre}.{i:05d}.flac"
            shutil.copy(shared("gtzan-excerpts/genres") / genre / name, genres / genre)
    store = str(tmp_path / "store")
    env = {**tiny_hf_home(tmp_path / "hf"), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    code, _, err = invoke("scan", str(genres), "--kind", "gtzan", "--name", "lib", "--store",
                          store)
    assert code == 0, err
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    counts = run_extract(Store(store), "lib", ["mert-v1-95m"])["extractors"]
    assert counts["mert-v1-95m"]["ok"] == 6 and counts["mert-v1-95m"]["failed"] == 0
    args = ("extract", "lib", "-e", "mert-v1-95m", "--store", store)

    code, out, err = invoke("sql", "SELECT n_windows, len(hidden_l00_mean) AS d0, "
                            "len(hidden_l02_mean) AS d2, len(last_std_mean) AS ds, precision, "
                            "versions FROM mert_v1_95m", "--format", "json", "--store", store)
    assert code == 0, err
    stored = json.loads(out)
    assert len(stored) == 6
    # The default precision, auto: bfloat16 on a CPU with AVX-512 BF16 or AMX, else float32.
    assert {(r["n_windows"], r["d0"], r["d2"], r["ds"], r["precision"]) for r in stored} == {
        (2, 32, 32, 32, resolve_precision("auto", CPU))}
    assert all("transformers" in json.loads(r["versions"]) for r in stored)

    code, out, err = invoke(*args, env=env)
    assert code == 0, err
    assert "mert-v1-95m: 0 extracted" in out and "nothing missing" in out

    code, _, err = invoke("bench", "lib", "--features",
                          "mert-v1-95m:layer=1,mert-v1-95m:layer=all", "--model", "logreg",
                          "--split", "kfold", "--folds", "2", "--store", store)
    assert code == 0, err
    code, out, err = invoke("leaderboard", "--format", "json", "--store", store)
    features = sorted(row["feature_set"] for row in json.loads(out))
    assert features == ["mert-v1-95m:layer=0", "mert-v1-95m:layer=1", "mert-v1-95m:layer=2"]


@pytest.mark.parametrize(("norm", "bias"), [("group", False), ("group", True),
                                            ("layer", True), ("layer", False)])
def test_time_major_feature_encoder_equals_transformers(norm: str, bias: bool) -> None:
    """The time-major front end on the loaded modules equals transformers' own feature
    encoder: to float32 rounding, and within bfloat16's rounding under autocast (the group
    norm folded into the first convolution, the convolutions as matrix products)."""
    from transformers import HubertConfig, HubertModel

    from mfs.extractors.hubert.frontend import TimeMajorFeatureEncoder

    torch.manual_seed(0)
    config = HubertConfig(conv_dim=(24,) * 7, feat_extract_norm=norm, conv_bias=bias,
                          hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=37)
    encoder = HubertModel(config).eval().feature_extractor
    for module in encoder.modules():  # norms away from identity, so the fold is tested
        if isinstance(module, torch.nn.GroupNorm | torch.nn.LayerNorm):
            torch.nn.init.normal_(module.weight, 1.0, 0.3)
            torch.nn.init.normal_(module.bias, 0.0, 0.3)
    ours = TimeMajorFeatureEncoder(encoder)
    audio = torch.randn(3, 16000) * torch.tensor([[0.05], [0.5], [1.0]]) + 0.01
    with torch.inference_mode():
        expected, got = encoder(audio), ours(audio)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_expected, low_got = encoder(audio).float(), ours(audio).float()
    cosine = torch.nn.functional.cosine_similarity(low_got.flatten(1), low_expected.flatten(1))
    assert float(cosine.min()) > 0.999
    assert float(torch.nn.functional.cosine_similarity(
        low_got.flatten(1), expected.flatten(1)).min()) > 0.999

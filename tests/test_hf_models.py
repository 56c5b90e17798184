"""Finding and loading models in Hugging Face's layouts, offline (`extractors/hf/`): the
HF cache by hub id, `$MFS_MODELS` trees with `.pth`-renamed weights, `model_path=DIR`, and
one line for a model that is missing or is another kind of model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_hubert import save_hubert
from tiny_models import rename_weights_to_pth, write_hf_cache

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.hf.loading import load_model, model_config
from mfs.extractors.hf.locate import ModelSource, find_model

# An empty Hugging Face cache and no models root unless a test makes them.
pytestmark = pytest.mark.usefixtures("hf_offline")

SOURCE = ModelSource("facebook/hubert-tiny", ("HuBERT/hubert-tiny",), ("hubert",))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    folder = tmp_path / "saved"
    save_hubert(folder, stable_layer_norm=True)
    return folder


def reference_output(folder: Path) -> torch.Tensor:
    from transformers import HubertModel

    model = HubertModel.from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        return model(torch.linspace(-1, 1, 4000)[None]).last_hidden_state


def loaded_output(found) -> torch.Tensor:
    from transformers import HubertConfig, HubertModel

    model = load_model(HubertModel, model_config(HubertConfig, found), found)
    with torch.inference_mode():
        return model(torch.linspace(-1, 1, 4000)[None]).last_hidden_state


def test_found_in_the_hf_cache_by_hub_id_and_loaded_as_transformers_loads_it(
        saved: Path, tmp_path: Path) -> None:
    snapshot = write_hf_cache(tmp_path / "hub", SOURCE.hub_id, saved)
    found = find_model(SOURCE)
    assert (found.where, found.directory) == ("Hugging Face cache", snapshot)
    assert [p.name for p in found.weights] == ["model.safetensors"]
    assert {p.name for p in found.files} == {"model.safetensors", "config.json",
                                            "preprocessor_config.json"}
    assert torch.equal(loaded_output(found), reference_output(saved))


def test_models_root_with_weights_renamed_to_pth(saved: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    expected = reference_output(saved)
    tree = tmp_path / "AI_models" / "HuBERT" / "hubert-tiny"
    shutil.copytree(saved, tree)
    rename_weights_to_pth(tree)
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    found = find_model(SOURCE)
    assert (found.where, found.directory) == ("$MFS_MODELS", tree)
    assert [p.name for p in found.weights] == ["pytorch_model.pth"]
    assert torch.equal(loaded_output(found), expected)


def test_model_path_wins_and_legacy_weight_names_load(saved: Path, tmp_path: Path) -> None:
    """Old checkpoints (MERT's, HuBERT's on the hub) name weight-norm parts `weight_g`/
    `weight_v` and may carry a `hubert.` prefix; transformers' own mapping applies."""
    from safetensors.torch import load_file

    expected = reference_output(saved)
    write_hf_cache(tmp_path / "hub", SOURCE.hub_id, saved)
    own = tmp_path / "mine"
    own.mkdir()
    shutil.copy(saved / "config.json", own)
    state = load_file(str(saved / "model.safetensors"))
    legacy = {"hubert." + k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v
              for k, v in state.items()}
    torch.save(legacy, own / "pytorch_model.bin")
    found = find_model(SOURCE, str(own))
    assert (found.where, found.directory) == ("model_path", own)
    assert torch.equal(loaded_output(found), expected)


def test_missing_model_is_one_line_naming_every_place(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFS_MODELS", str(tmp_path / "AI_models"))
    with pytest.raises(ExtractorUnavailable) as error:
        find_model(SOURCE)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("model facebook/hubert-tiny not found offline")
    for place in (tmp_path / "AI_models" / "HuBERT" / "hubert-tiny",
                  tmp_path / "hub" / "models--facebook--hubert-tiny"):
        assert str(place) in message
    assert "model_path=DIR" in message and "MFS_MODELS" in message


def test_a_folder_of_another_model_says_what_it_found(saved: Path, tmp_path: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "model_type": "clap"}))
    with pytest.raises(ExtractorUnavailable, match=r"holds a 'clap' model .*expected 'hubert'"):
        find_model(SOURCE, str(saved))
    with pytest.raises(ExtractorUnavailable, match="no config.json there"):
        find_model(SOURCE, str(tmp_path / "nowhere"))


def test_weights_that_do_not_fit_are_refused_not_half_random(saved: Path,
                                                             tmp_path: Path) -> None:
    """A config.json that claims HuBERT over weights of another shape or missing layers."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(saved / "model.safetensors"))
    save_file({k: v for k, v in state.items() if "layers.1." not in k},
              str(saved / "model.safetensors"))
    found = find_model(SOURCE, str(saved))
    with pytest.raises(ExtractorUnavailable, match=r"weights do not fit HubertModel: \d+ "
                                                   "parameters missing"):
        loaded_output(found)
    (saved / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ExtractorUnavailable, match="not a readable checkpoint"):
        loaded_output(find_model(SOURCE, str(saved)))

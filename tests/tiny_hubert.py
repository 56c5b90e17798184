"""Tiny HuBERT-graph models (HuBERT, wav2vec2, MERT-v1) in their real checkpoint layouts."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import tiny

# 2 layers, small widths; the conv front end keeps the real one's total stride of 320.
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64, "conv_dim": [16, 16, 16], "conv_stride": [5, 8, 8],
         "conv_kernel": [10, 8, 8], "num_conv_pos_embeddings": 16,
         "num_conv_pos_embedding_groups": 4}
# MERT-v1's config.json keys besides HuBERT's (configuration_MERT.MERTConfig), as the hub
# checkpoints have them; its remote code is named in `auto_map` and must never run.
MERT_KEYS = {"architectures": ["MERTModel"], "model_type": "mert_model",
             "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig",
                          "AutoModel": "modeling_MERT.MERTModel"},
             "attention_relax": -1.0, "deepnorm": False, "feature_extractor_cqt": False,
             "feature_extractor_cqt_bins": 336, "sample_rate": 24000}
# The remote-code files of a MERT checkpoint, stand-ins that fail loudly if imported.
REMOTE_CODE = ("configuration_MERT.py", "modeling_MERT.py")


def norms(stable_layer_norm: bool) -> dict[str, object]:
    """Pre-LN with layer-normed convs (HuBERT-large, MERT-330M), or post-LN with one group
    norm (MERT-95M, wav2vec2-large)."""
    if stable_layer_norm:
        return {"do_stable_layer_norm": True, "feat_extract_norm": "layer"}
    return {"do_stable_layer_norm": False, "feat_extract_norm": "group"}


def write_preprocessor(folder: Path, rate: int, normalize: bool = True) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": normalize,
         "feature_size": 1, "padding_value": 0.0, "sampling_rate": rate,
         "return_attention_mask": True}))


def jitter(model: object) -> None:
    """Move every parameter off its initial value: transformers initialises norms to 1/0
    and biases to 0, which would hide a norm or bias read from the wrong tensor."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))


def save_hubert(folder: Path, stable_layer_norm: bool, seed: int = 0, **config: object) -> None:
    """A random HuBERT (`do_stable_layer_norm` as HuBERT-large and MERT-330M have it, or
    post-LN with group norm as MERT-95M), saved with save_pretrained."""
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**{**SMALL, **norms(stable_layer_norm), **config}))
    jitter(model)
    model.save_pretrained(folder)
    write_preprocessor(folder, 16000)


def save_wav2vec2(folder: Path, stable_layer_norm: bool, seed: int = 0) -> None:
    """A random wav2vec2 as `Wav2Vec2ForPreTraining` saves it (the hub's wav2vec2-large is
    that checkpoint): `wav2vec2.`-prefixed weights beside the quantizer's."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    torch.manual_seed(seed)
    config = Wav2Vec2Config(**SMALL, **norms(stable_layer_norm), codevector_dim=16,
                            proj_codevector_dim=16, num_codevectors_per_group=8)
    model = Wav2Vec2ForPreTraining(config)
    jitter(model)
    model.save_pretrained(folder)
    write_preprocessor(folder, 16000)


def save_mert(folder: Path, stable_layer_norm: bool, seed: int = 0) -> None:
    """A random MERT-v1 as the hub has it: config.json with MERT's model_type, `auto_map`
    and extra keys, the remote-code files, and `pytorch_model.bin` with the legacy weight
    norm names (`weight_g`/`weight_v`) transformers 4.x saved MERT with."""
    import torch
    from safetensors.torch import load_file

    save_hubert(folder, stable_layer_norm, seed)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **MERT_KEYS}, indent=2))
    state = load_file(str(folder / "model.safetensors"))
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v
              for k, v in state.items()}
    assert any(k.endswith("weight_g") for k in legacy)
    torch.save(legacy, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    for name in REMOTE_CODE:
        (folder / name).write_text(f"raise RuntimeError('remote code {name} must not run')\n")
    write_preprocessor(folder, 24000)


@tiny("hubert-large")
def tiny_hubert_large(folder: Path) -> None:
    save_hubert(folder, stable_layer_norm=True)


@tiny("wav2vec2-large")
def tiny_wav2vec2_large(folder: Path) -> None:
    save_wav2vec2(folder, stable_layer_norm=False, seed=1)


@tiny("mert-v1-95m")
def tiny_mert_95m(folder: Path) -> None:
    save_mert(folder, stable_layer_norm=False, seed=2)


@tiny("mert-v1-330m")
def tiny_mert_330m(folder: Path) -> None:
    save_mert(folder, stable_layer_norm=True, seed=3)

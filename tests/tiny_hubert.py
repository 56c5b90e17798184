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


def save_hubert(folder: Path, stable_layer_norm: bool, seed: int = 0, **config: object) -> None:
    """A random HuBERT (`do_stable_layer_norm` as HuBERT-large and MERT-330M have it, or
    post-LN with group norm as MERT-95M), saved with save_pretrained."""
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    norm = {"do_stable_layer_norm": True, "feat_extract_norm": "layer"} if stable_layer_norm \
        else {"do_stable_layer_norm": False, "feat_extract_norm": "group"}
    model = HubertModel(HubertConfig(**SMALL, **norm, **config))
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": True,
         "sampling_rate": 16000, "return_attention_mask": stable_layer_norm}))


@tiny("hubert-large")
def tiny_hubert_large(folder: Path) -> None:
    save_hubert(folder, stable_layer_norm=True)

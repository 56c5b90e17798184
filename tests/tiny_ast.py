"""A tiny random AST (AudioSet classifier) in the real checkpoint's layout."""

from __future__ import annotations

from pathlib import Path

from tiny_models import tiny

# A few AudioSet names, so the logits' feature names come from config.json's id2label.
LABELS = ("Speech", "Music", "Guitar", "Drum", "Silence")


def save_ast(folder: Path, seed: int = 0) -> None:
    """ASTForAudioClassification with 2 layers and small widths; the input (1024 frames x
    128 mels, patches 16 with strides 10) is the real one, as is preprocessor_config.json."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(seed)
    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, id2label=dict(enumerate(LABELS)),
                       label2id={label: i for i, label in enumerate(LABELS)})
    ASTForAudioClassification(config).eval().save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)


@tiny("ast")
def tiny_ast(folder: Path) -> None:
    save_ast(folder)

"""A tiny random CLAP (larger_clap_music's kind: unfused HTSAT audio tower, RoBERTa text
tower) in the real checkpoint's layout, with a tiny byte-level BPE tokenizer built offline."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_models import tiny

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
# A few merges, so BPE has something to merge in the prompts' words.
MERGES = ("Ġ s", "o n", "i s", "Ġ a", "Ġs on", "Ġson g")


def byte_symbols() -> list[str]:
    """GPT-2's byte-to-unicode table: every byte as one printable symbol."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in range(256)]


def save_tokenizer(folder: Path) -> int:
    """vocab.json + merges.txt of a byte-level BPE (RoBERTa's format), then saved as
    RobertaTokenizer saves itself; returns the vocabulary size."""
    from transformers import RobertaTokenizer

    merged = ["".join(merge.split()) for merge in MERGES]
    vocab = {token: i for i, token in enumerate([*SPECIALS, *byte_symbols(), *merged,
                                                 "<mask>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in MERGES])
    tokenizer.save_pretrained(folder)
    return len(vocab)


def save_clap(folder: Path, seed: int = 0, truncation: str = "rand_trunc") -> None:
    """ClapModel with a 2-stage Swin audio tower and a 2-layer text tower, small widths; the
    audio input (1001 frames x 64 mels → a 256 x 256 image) is the real one, and so is
    preprocessor_config.json (rand_trunc from 50 Hz, as larger_clap_music's)."""
    import torch
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
    )

    vocab = save_tokenizer(folder)
    torch.manual_seed(seed)
    fused = truncation == "fusion"
    audio = ClapAudioConfig(patch_embeds_hidden_size=16, depths=[1, 1],
                            num_attention_heads=[2, 2], hidden_size=32, projection_dim=16,
                            enable_fusion=fused, fusion_type="aff_2d" if fused else None)
    text = ClapTextConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, projection_dim=16,
                          max_position_embeddings=66)
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(),
                        projection_dim=16)
    ClapModel(config).eval().save_pretrained(folder)
    ClapFeatureExtractor(frequency_min=50, truncation=truncation).save_pretrained(folder)


@tiny("clap-music")
def tiny_clap_music(folder: Path) -> None:
    save_clap(folder)

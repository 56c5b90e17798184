"""A tiny random EnCodec in facebook/encodec_24khz's checkpoint layout (config.json,
preprocessor_config.json, model.safetensors), from the real config class."""

from __future__ import annotations

from pathlib import Path

from tiny_models import tiny

# encodec_24khz's config (the class defaults) with small widths: the strides stay
# (8, 5, 4, 2), so frames still come at 75 Hz; 2 LSTM layers as the real one; a small
# codebook so the quantiser's buffers stay small.
SMALL = {"num_filters": 4, "hidden_size": 16, "codebook_size": 16}


def save_encodec(folder: Path, seed: int = 0, **config: object) -> None:
    """A random EnCodec, saved with save_pretrained beside its feature extractor's config."""
    import torch
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel

    torch.manual_seed(seed)
    model = EncodecModel(EncodecConfig(**{**SMALL, **config}))
    model.save_pretrained(folder)
    EncodecFeatureExtractor(sampling_rate=model.config.sampling_rate,
                            feature_size=model.config.audio_channels).save_pretrained(folder)


@tiny("encodec-24khz")
def tiny_encodec_24khz(folder: Path) -> None:
    save_encodec(folder)

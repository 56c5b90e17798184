"""CLAP's two towers from one found folder: the audio tower behind our front end
(`frontend`), and the text tower with the folder's own tokenizer, for prompt embeddings.
Each loads only its half of the checkpoint's weights (`ClapAudioModelWithProjection`,
`ClapTextModelWithProjection` share ClapModel's parameter names)."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from transformers import (
    ClapAudioModelWithProjection,
    ClapConfig,
    ClapTextModelWithProjection,
)

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.clap.frontend import ClapFrontEnd, ClapSettings
from mfs.extractors.hf.loading import load_model, model_config
from mfs.extractors.hf.locate import FoundModel

# Files a tokenizer is read from; any of them defines the text embeddings.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                   "special_tokens_map.json")


def preprocessor(found: FoundModel) -> dict:
    path = found.directory / "preprocessor_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class ClapAudioNetwork(torch.nn.Module):
    """Waveforms (batch, ≤ 10 s) at 48 kHz → the projected audio embedding (batch, 512),
    and the same L2-normalised (what CLAP's similarity compares)."""

    def __init__(self, found: FoundModel) -> None:
        super().__init__()
        config = model_config(ClapConfig, found).audio_config
        config._attn_implementation = "eager"  # the Swin audio tower has no SDPA path
        self.settings = ClapSettings.from_preprocessor(preprocessor(found),
                                                       fused=config.enable_fusion)
        if (self.settings.truncation == "fusion") != bool(config.enable_fusion):
            raise ExtractorUnavailable(
                f"{found.directory}: preprocessor_config.json truncation="
                f"{self.settings.truncation!r} does not fit a model with enable_fusion="
                f"{config.enable_fusion}")
        self.front = ClapFrontEnd(self.settings)
        self.model = load_model(ClapAudioModelWithProjection, config, found)

    def forward(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.front(waveforms)
        # No clip is longer than the model's 10 s: fusion's local branch stays off.
        is_longer = torch.zeros(len(features), 1, dtype=torch.bool, device=features.device)
        audio = self.model(input_features=features, is_longer=is_longer).audio_embeds
        return {"audio": audio, "audio_unit": F.normalize(audio.float(), dim=-1)}


def load_tokenizer(found: FoundModel):  # noqa: ANN201 - a transformers tokenizer
    """The folder's own tokenizer (RoBERTa's for LAION CLAP), offline."""
    from transformers import AutoTokenizer

    if not any((found.directory / name).is_file() for name in TOKENIZER_FILES[:2]):
        raise ExtractorUnavailable(f"{found.directory}: no tokenizer (tokenizer.json or "
                                   "vocab.json + merges.txt) for CLAP's text prompts")
    return AutoTokenizer.from_pretrained(str(found.directory), local_files_only=True)


def tokenizer_files(found: FoundModel) -> list:
    return [found.directory / name for name in TOKENIZER_FILES
            if (found.directory / name).is_file()]


@torch.inference_mode()
def text_embeddings(found: FoundModel, texts: list[str],
                    device: torch.device | None = None) -> torch.Tensor:
    """The projected text embeddings (len(texts), 512) of `texts`, in float32."""
    config = model_config(ClapConfig, found).text_config
    config._attn_implementation = "eager"  # CLAP's text tower has no SDPA path either
    model = load_model(ClapTextModelWithProjection, config, found).to(device or "cpu")
    tokens = load_tokenizer(found)(texts, padding=True, return_tensors="pt")
    tokens = {k: v.to(model.device) for k, v in tokens.items()}
    return model(**tokens).text_embeds.float().cpu()

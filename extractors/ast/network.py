"""AST as one torch module: our Kaldi front end (`frontend`) feeding transformers'
`ASTForAudioClassification`, loaded from the found folder by `mfs.extractors.hf.loading`."""

from __future__ import annotations

import json

import torch
from transformers import ASTConfig, ASTForAudioClassification

from mfs.extractors.ast.frontend import AstFrontEnd, FbankSettings
from mfs.extractors.hf.loading import load_model, model_config
from mfs.extractors.hf.locate import FoundModel


def preprocessor(found: FoundModel) -> dict:
    """preprocessor_config.json of the model folder ({} when it has none)."""
    path = found.directory / "preprocessor_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class AstNetwork(torch.nn.Module):
    """Waveforms (batch, samples) at 16 kHz → pooled CLS/distillation output, mean of the
    patch tokens, and the AudioSet logits, for one window each."""

    def __init__(self, found: FoundModel) -> None:
        super().__init__()
        config = model_config(ASTConfig, found)
        settings = FbankSettings.from_preprocessor(preprocessor(found))
        if (settings.max_length, settings.num_mel_bins) != (config.max_length,
                                                            config.num_mel_bins):
            raise ValueError(f"{found.directory}: preprocessor_config.json gives "
                             f"{settings.max_length}x{settings.num_mel_bins} frames x mels, "
                             f"config.json {config.max_length}x{config.num_mel_bins}")
        self.front = AstFrontEnd(settings)
        self.model = load_model(ASTForAudioClassification, config, found)

    def forward(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = self.front(waveforms)
        out = self.model.audio_spectrogram_transformer(inputs)
        pooled = out.pooler_output  # (CLS + distillation token) / 2, after the final norm
        return {"pooled": pooled, "patches": out.last_hidden_state[:, 2:].mean(dim=1),
                "logits": self.model.classifier(pooled)}

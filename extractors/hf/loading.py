"""A found model folder's weights in a transformers class: read the state dict ourselves
(safetensors, or PyTorch pickles under any name, `.pth` included, read with
`weights_only`), then let transformers map legacy names (`weight_g`, a `hubert.` prefix)
while it builds the model, with SDPA attention. MERT's remote code is never run: its
config.json is read into the built-in class whose inference graph it shares.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import logging as transformers_logging

from mfs.extractors.base import ExtractorUnavailable
from mfs.extractors.hf import bfloat_linear, cpu_attention
from mfs.extractors.hf.locate import FoundModel

# Parameters a checkpoint may lack without changing inference: training-only masks.
TRAINING_ONLY = ("masked_spec_embed",)
# Config keys that name remote code or the class a checkpoint was saved from: dropped, so
# the built-in class never looks for code it must not run.
REMOTE_CODE_KEYS = ("auto_map", "architectures", "model_type", "transformers_version")


def read_state_dict(files: tuple[Path, ...]) -> dict[str, torch.Tensor]:
    """All tensors of the weight files (shards merged); one line naming a file that is not
    a readable checkpoint."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                part = load_file(str(path))
            else:
                part = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # noqa: BLE001 - every reader error is "not a checkpoint"
            raise ExtractorUnavailable(f"{path}: not a readable checkpoint "
                                       f"({type(error).__name__}: {error})") from None
        if isinstance(part, dict) and "state_dict" in part and len(part) < 8:
            part = part["state_dict"]  # a training checkpoint wrapping the weights
        if not isinstance(part, dict):
            raise ExtractorUnavailable(f"{path}: holds a {type(part).__name__}, "
                                       "not a state dict of tensors")
        state.update(part)
    return state


def model_config(config_class: type[PreTrainedConfig], found: FoundModel,
                 **overrides: object) -> PreTrainedConfig:
    """`found`'s config.json as `config_class`, remote-code keys dropped, with SDPA
    attention through `cpu_attention` (our bfloat16 kernel where it applies)."""
    values = {k: v for k, v in found.config.items() if k not in REMOTE_CODE_KEYS}
    config = config_class.from_dict({**values, **overrides})
    config._attn_implementation = cpu_attention.NAME
    return config


def load_model(model_class: type[PreTrainedModel], config: PreTrainedConfig,
               found: FoundModel) -> PreTrainedModel:
    """`model_class` built from `config` with `found`'s weights, on the CPU, in eval mode,
    its linear layers fused for CPU bfloat16 (`bfloat_linear`; float32 is unchanged).

    Every parameter the model has must come from the checkpoint (bar `TRAINING_ONLY`):
    weights that do not fit are a folder of another model, said in one line, never a
    half-random model.
    """
    state = read_state_dict(found.weights)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        model, info = model_class.from_pretrained(None, config=config, state_dict=state,
                                                  output_loading_info=True)
    except (RuntimeError, ValueError) as error:  # shapes that do not fit
        raise ExtractorUnavailable(f"{found.directory}: weights do not fit "
                                   f"{model_class.__name__} ({_first_line(error)})") from None
    missing = sorted(k for k in info["missing_keys"]
                     if not any(part in k for part in TRAINING_ONLY))
    wrong = sorted(info.get("mismatched_keys", ()))
    if missing or wrong:
        example = (missing or [str(k) for k in wrong])[0]
        raise ExtractorUnavailable(
            f"{found.directory}: weights do not fit {model_class.__name__}: "
            f"{len(missing)} parameters missing, {len(wrong)} of another shape "
            f"(e.g. {example}); is this folder the model it claims to be?")
    return bfloat_linear.install(model.eval())


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

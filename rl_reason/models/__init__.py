"""Policy models: loading (alias, hub id, local dir, GGUF), LoRA adapters, tiny random models, token log-probs."""

from rl_reason.models.loading import (
    MODEL_ALIASES,
    base_policy,
    cache_dir,
    disable_dropout,
    load_model,
    resolve_alias,
    resolve_model_source,
)
from rl_reason.models.logprobs import pack_layout, padded_batch, position_ids_from_mask, token_logprobs
from rl_reason.models.lora import adapter_disabled, apply_lora, is_lora, merged_copy
from rl_reason.models.tiny import tiny_model, tiny_tokenizer

__all__ = [
    "MODEL_ALIASES",
    "adapter_disabled",
    "apply_lora",
    "base_policy",
    "cache_dir",
    "disable_dropout",
    "is_lora",
    "load_model",
    "merged_copy",
    "pack_layout",
    "padded_batch",
    "position_ids_from_mask",
    "resolve_alias",
    "resolve_model_source",
    "tiny_model",
    "tiny_tokenizer",
    "token_logprobs",
]

"""Policy models: loading (alias, hub id, local dir, GGUF), tiny random models, token log-probs."""

from rl_reason.models.loading import (
    MODEL_ALIASES,
    cache_dir,
    disable_dropout,
    load_model,
    resolve_alias,
    resolve_model_source,
)
from rl_reason.models.logprobs import pack_sequences, position_ids_from_mask, token_logprobs
from rl_reason.models.tiny import tiny_model, tiny_tokenizer

__all__ = [
    "MODEL_ALIASES",
    "cache_dir",
    "disable_dropout",
    "load_model",
    "pack_sequences",
    "position_ids_from_mask",
    "resolve_alias",
    "resolve_model_source",
    "tiny_model",
    "tiny_tokenizer",
    "token_logprobs",
]

"""Heads on causal-LM backbones: scalar ones (reward models, PPO critics) and the two-class
token classifier of a process reward model (P(step is good) at each step's last token).

Both are a transformers ``AutoModelForSequenceClassification`` with ``num_labels=1`` (a linear
``score`` head on the decoder), so a trained reward model is a plain HF folder that
``from_pretrained`` loads. The head is read at positions chosen here rather than through the
HF forward, which finds "the last non-pad token" by ``pad_token_id``: with pad == EOS (SmolLM2,
Qwen) that picks the wrong token of a response that ends in EOS.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from rl_reason.model_names import is_scalar_model_dir, is_step_model_dir
from rl_reason.models.logprobs import position_ids_from_mask


def _head_model_from_lm(lm: torch.nn.Module, auto_class, num_labels: int, problem_type: str) -> torch.nn.Module:
    """An ``auto_class`` model whose backbone is a copy of ``lm``'s decoder and whose new
    ``score`` head is zero, so every output starts at 0 and the result does not depend on the
    global RNG; ``lm`` is left untouched (a LoRA policy's adapter is merged into the copied backbone)."""
    from rl_reason.distributed.fsdp2 import full_state_items
    from rl_reason.models.lora import merged_copy

    lm = merged_copy(lm)
    config = lm.config.__class__.from_dict(lm.config.to_dict())
    config.num_labels = num_labels
    config.problem_type = problem_type
    model = auto_class.from_config(config)
    model.base_model.load_state_dict(dict(full_state_items(lm.base_model)))  # an FSDP2 policy is sharded
    torch.nn.init.zeros_(model.score.weight)
    if getattr(model.score, "bias", None) is not None:
        torch.nn.init.zeros_(model.score.bias)
    param = next(lm.parameters())
    return model.to(device=param.device, dtype=param.dtype).eval()


def scalar_model_from_lm(lm: torch.nn.Module) -> torch.nn.Module:
    """A one-output sequence-classification model (reward / value 0 at the start) on ``lm``'s backbone."""
    return _head_model_from_lm(lm, AutoModelForSequenceClassification, 1, "regression")


def step_model_from_lm(lm: torch.nn.Module) -> torch.nn.Module:
    """A two-class token-classification model (a PRM; P(good) = 1/2 everywhere at the start) on ``lm``'s backbone."""
    return _head_model_from_lm(lm, AutoModelForTokenClassification, 2, "single_label_classification")


def _load_head_model(name_or_path, dtype: str, device: str, is_saved, auto_class, from_lm):
    from rl_reason.models.loading import load_model, parse_dtype

    path = Path(str(name_or_path)).expanduser()
    if path.is_dir() and is_saved(path):
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = auto_class.from_pretrained(path, dtype=parse_dtype(dtype))
        return model.to(device).eval(), tokenizer
    lm, tokenizer = load_model(name_or_path, dtype=dtype, device=device)
    model = from_lm(lm)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_scalar_model(name_or_path: str | os.PathLike, dtype: str = "float32", device: str = "cpu"):
    """``(model, tokenizer)``: a saved reward model / critic folder as is, or any causal LM that
    ``rl_reason.models.load_model`` accepts (alias, hub id, dir, GGUF) with a fresh scalar head."""
    return _load_head_model(name_or_path, dtype, device, is_scalar_model_dir, AutoModelForSequenceClassification,
                            scalar_model_from_lm)


def load_step_model(name_or_path: str | os.PathLike, dtype: str = "float32", device: str = "cpu"):
    """``(model, tokenizer)`` of a process reward model: a saved PRM folder (token classification)
    as is, or any causal LM with a fresh two-class head (class 1 = the step is good)."""
    return _load_head_model(name_or_path, dtype, device, is_step_model_dir, AutoModelForTokenClassification,
                            step_model_from_lm)


def head_outputs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, num_labels) float32 head outputs at every position (a PRM's step logits)."""
    from rl_reason.models.lora import unwrap

    model = unwrap(model)  # a LoRA model's own layers carry its adapters (and its trained score head)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids_from_mask(attention_mask)).last_hidden_state
    return model.score(hidden).float()


def _token_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return head_outputs(model, input_ids, attention_mask).squeeze(-1)  # (B, T)


def sequence_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) left-padded prompt + right-padded response -> (B,) head output at each row's last
    attended token (the reward of the whole sequence)."""
    scores = _token_scores(model, input_ids, attention_mask)
    T = attention_mask.shape[1]
    last = T - 1 - attention_mask.flip(-1).long().argmax(-1)
    return scores.gather(-1, last.unsqueeze(-1)).squeeze(-1)


def token_values(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int) -> torch.Tensor:
    """Critic values (B, R): the value of response token t is read at the position that
    predicts it (column t - 1), i.e. the state before the token is chosen, as the policy's
    log-prob of token t is (``token_logprobs``). Padding positions hold 0."""
    scores = _token_scores(model, input_ids, attention_mask)
    values = scores[:, -response_length - 1 : -1]
    return values * attention_mask[:, -response_length:].to(values.dtype)

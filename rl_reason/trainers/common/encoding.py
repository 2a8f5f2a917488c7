"""Text -> tensors for the offline trainers (RM, DPO, SFT, scoring) in rl-reason's one layout:
left-padded prompts, then right-padded responses, (B, P + R); the RL trainers' prompt-length filter."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from rl_reason.algorithms.process import IGNORE_INDEX

logger = logging.getLogger(__name__)


@dataclass
class Encoded:
    input_ids: torch.Tensor  # (B, P + R)
    attention_mask: torch.Tensor  # (B, P + R)
    response_mask: torch.Tensor  # (B, R) float: 1 on response tokens

    @property
    def response_length(self) -> int:
        return self.response_mask.shape[1]

    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)


def as_text(value: Any, tokenizer, role: str) -> str:
    """TRL rows hold either strings or chat messages; a conversational prompt is rendered with
    the tokenizer's chat template (plus the generation prompt), a conversational response is the
    content of its assistant turn(s)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        if role == "prompt":
            return tokenizer.apply_chat_template(value, tokenize=False, add_generation_prompt=True)
        return "".join(m["content"] for m in value if m.get("role", "assistant") == "assistant")
    raise ValueError(f"{role} must be a string or a list of chat messages, got {type(value).__name__}")


def encode(tokenizer, prompts: list[str], responses: list[str], max_prompt_tokens: int, max_response_tokens: int,
           device: str | torch.device = "cpu", add_eos: bool = True) -> Encoded:
    """Tokenize prompt/response pairs. A prompt over ``max_prompt_tokens`` is an error (cutting
    it would change the question); responses keep their first ``max_response_tokens`` tokens
    (EOS appended first, so the model learns to stop)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    p_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for p, ids in zip(prompts, p_ids):
        if len(ids) > max_prompt_tokens:
            raise ValueError(f"prompt of {len(ids)} tokens > max_prompt_tokens={max_prompt_tokens}: {p[:80]!r}...")
    r_ids = []
    for r in responses:
        ids = tokenizer(r, add_special_tokens=False)["input_ids"]
        if add_eos and tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids = ids + [tokenizer.eos_token_id]
        r_ids.append(ids[:max_response_tokens])
    return Encoded(*_layout(p_ids, r_ids, pad, device))


def _layout(p_ids: list[list[int]], r_ids: list[list[int]], pad: int, device) -> tuple[torch.Tensor, ...]:
    """(input_ids, attention_mask (B, P + R), response_mask (B, R)): prompts left-padded, responses right-padded."""
    P = max(1, max(len(p) for p in p_ids))
    R = max(1, max(len(r) for r in r_ids))
    B = len(p_ids)
    input_ids = torch.full((B, P + R), pad, dtype=torch.long)
    attention = torch.zeros((B, P + R), dtype=torch.long)
    response_mask = torch.zeros((B, R))
    for b, (p, r) in enumerate(zip(p_ids, r_ids)):
        input_ids[b, P - len(p) : P] = torch.tensor(p, dtype=torch.long)
        attention[b, P - len(p) : P] = 1
        input_ids[b, P : P + len(r)] = torch.tensor(r, dtype=torch.long)
        attention[b, P : P + len(r)] = 1
        response_mask[b, : len(r)] = 1.0
    return input_ids.to(device), attention.to(device), response_mask.to(device)


@dataclass
class EncodedSteps:
    input_ids: torch.Tensor  # (B, P + R)
    attention_mask: torch.Tensor  # (B, P + R)
    labels: torch.Tensor  # (B, P + R) long: the step's label at its last token, IGNORE_INDEX elsewhere
    step_end: torch.Tensor  # (B, P + R) bool: each kept step's last token (its separator)


def encode_steps(tokenizer, prompts: list[str], steps: list[list[str]], separator: str, max_prompt_tokens: int,
                 max_response_tokens: int, labels: list[list[bool]] | None = None,
                 device: str | torch.device = "cpu") -> EncodedSteps:
    """A process reward model's input, as TRL's PRMTrainer lays it out: the prompt, then each step
    followed by the separator's tokens; the label of a step sits on the separator's last token.

    Prompts keep their last ``max_prompt_tokens`` tokens (the question's end is nearest the
    steps); steps that do not fit in ``max_response_tokens`` are left out whole, so every kept
    step end is a real one. Shapes in ``EncodedSteps``; ``labels`` None gives all-ignored labels
    (scoring).
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sep = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if not sep:
        raise ValueError(f"step separator {separator!r} encodes to no tokens")
    p_ids = [tokenizer(p + separator, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for p in prompts]
    r_ids: list[list[int]] = []
    ends: list[list[tuple[int, int]]] = []  # (position in the response, label) of each kept step end
    for b, row in enumerate(steps):
        ids: list[int] = []
        row_ends: list[tuple[int, int]] = []
        for i, step in enumerate(row):
            piece = tokenizer(step, add_special_tokens=False)["input_ids"] + sep
            if len(ids) + len(piece) > max_response_tokens:
                break
            ids += piece
            row_ends.append((len(ids) - 1, IGNORE_INDEX if labels is None else int(bool(labels[b][i]))))
        r_ids.append(ids)
        ends.append(row_ends)
    input_ids, attention, response_mask = _layout(p_ids, r_ids, pad, "cpu")
    P = input_ids.shape[1] - response_mask.shape[1]
    label_t = torch.full(input_ids.shape, IGNORE_INDEX, dtype=torch.long)
    step_end = torch.zeros(input_ids.shape, dtype=torch.bool)
    for b, row_ends in enumerate(ends):
        for pos, value in row_ends:
            label_t[b, P + pos] = value
            step_end[b, P + pos] = True
    return EncodedSteps(input_ids.to(device), attention.to(device), label_t.to(device), step_end.to(device))


def drop_overlong_prompts(examples: list, prompts: list[str], tokenizer, limit: int, on_overlong: str,
                          source: str) -> tuple[list, list[str]]:
    """The (example, prompt) pairs whose prompt fits in ``limit`` tokens. Longer ones are left out
    with one warning naming their count (``on_overlong="filter"``, as verl's overlong-prompt
    filter does) or stop the run naming the first (``"error"``); they are never cut."""
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    over = [i for i, n in enumerate(lengths) if n > limit]
    if over and on_overlong == "error":
        i = over[0]
        raise ValueError(f"{source}: example {examples[i].id!r} has {lengths[i]} prompt tokens > model.max_prompt_tokens="
                         f"{limit} ({len(over)} such prompts; data.on_overlong=filter leaves them out)")
    if len(over) == len(prompts) and prompts:
        raise ValueError(f"{source}: all {len(prompts)} prompts are longer than model.max_prompt_tokens={limit}")
    if over:
        logger.warning("%s: left out %d of %d prompts longer than model.max_prompt_tokens=%d (longest %d tokens)",
                       source, len(over), len(prompts), limit, max(lengths[i] for i in over))
    skip = set(over)
    keep = [i for i in range(len(prompts)) if i not in skip]
    return [examples[i] for i in keep], [prompts[i] for i in keep]

"""Token sampling shared by the HF engine: temperature, top-k, top-p, seeded per-sample streams."""

from __future__ import annotations

import numpy as np
import torch

from rl_reason.rollout.types import SamplingParams


def sample_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """The seed of one sample's random stream, a function of (seed, prompt, sample) only.

    One stream per sample (not per batch) makes results independent of batch size and of which
    other prompts share the batch: the same call repeats exactly, however it is batched.
    """
    state = np.random.SeedSequence([seed, prompt_index, sample_index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1  # 63 bits: fits every engine's int64 seed


def sample_generator(seed: int, prompt_index: int, sample_index: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, prompt_index, sample_index))


def filtered_probs(scaled_logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Softmax of ``scaled_logits`` (N, V) restricted to the top-k tokens and the top-p nucleus."""
    if top_k > 0 and top_k < scaled_logits.shape[-1]:
        kth = torch.topk(scaled_logits, top_k, dim=-1).values[:, -1:]
        scaled_logits = scaled_logits.masked_fill(scaled_logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(scaled_logits, dim=-1, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens strictly more likely already cover top_p (the first one always stays).
        drop = (sorted_probs.cumsum(-1) - sorted_probs) >= top_p
        scaled_logits = scaled_logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.softmax(scaled_logits, dim=-1)


def sample_tokens(
    logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens (N,) and their log-probs (N,) from float32 ``logits`` (N, V), one generator per row.

    The log-prob is of ``log_softmax(logits / temperature)`` before top-k/top-p (raw logits when
    greedy): the quantity ``token_logprobs(..., temperature)`` recomputes for importance ratios.
    Sampling is by inverse CDF with one uniform per row, drawn from that row's generator.
    """
    if params.temperature == 0:
        tokens = logits.argmax(-1)
        return tokens, torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1)
    scaled = logits / params.temperature
    logprobs = torch.log_softmax(scaled, -1)
    probs = filtered_probs(scaled, params.top_k, params.top_p)
    uniforms = torch.cat([torch.rand(1, generator=g) for g in generators]).to(logits.device)
    cdf = probs.double().cumsum(-1)
    tokens = torch.searchsorted(cdf, (uniforms.double() * cdf[:, -1])[:, None], right=True).squeeze(-1)
    tokens = tokens.clamp(max=logits.shape[-1] - 1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)

"""Per-token log-probs (and entropies) of given responses under a causal LM, memory-bounded.

Batch layout everywhere in rl-reason: left-padded prompts, then right-padded responses,
concatenated into ``input_ids`` of shape (B, P+R); the last R columns are the response.

Notation: B batch, P prompt columns, R response columns, T = P+R, H hidden size, V vocabulary.
The naive ``log_softmax(model(x).logits)`` materialises (B, T, V) float32: 6 GiB for B=32,
T=1024, V=49k (and twice that for backward). Here the decoder runs once to (B, T, H); only the
valid response positions are projected to the vocabulary, ``chunk_size`` tokens at a time, and
under autograd each chunk is recomputed in backward (activation checkpointing), so peak memory
is O(chunk_size * V) instead of O(B * T * V).

Two savings that leave the numbers unchanged (to fp rounding): columns that are padding in every
row are cut off before the forward, and with ``prompt_index`` rows that share a prompt (a GRPO
group: n responses to one prompt) run that prompt through the decoder once; its keys/values are
then gathered to every row (``DynamicCache.batch_select_indices``, differentiable, so gradients
from all the group's responses sum into the one prompt forward). With a prompt of P tokens, n
responses of R tokens, the decoder sees P + n*R tokens per group instead of n*(P + R).

With ``pack_tokens`` the padded layout is not fed to the decoder at all: each row's attended
tokens are packed first-fit into rows of at most ``pack_tokens`` tokens (``pack_layout``), with
``position_ids`` restarting at 0 for every sequence and no attention mask, from which
transformers derives a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``;
flash-attention's varlen kernels read the same position ids). Only the trailing end of a packed
row can be filler, and that filler is a sequence of its own that no real token attends to. With
``prompt_index`` as well, each group's prompt is packed once, followed by its rows' responses,
each response attending to the prompt and to itself under an explicit mask: the fewest tokens
of all (P + sum of the n response lengths per group), and no cache, so activation checkpointing
works. On CPU the attention over a packed row is dense (L x L per row), so a budget of a few
hundred tokens keeps that term small.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting only attended tokens, so a left-padded row starts at position 0.

    The rollout engine uses the same rule, which makes its sampled log-probs and these agree.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def padded_batch(
    prompts: list[list[int]], responses: list[list[int]], pad_token_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The batch layout from token-id lists: ``(input_ids, attention_mask, response_length)``.

    Prompts are left-padded to the longest prompt P, responses right-padded to the longest
    response R; e.g. rollout ``Completion.prompt_token_ids`` and ``.token_ids``.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    P, R = max(map(len, prompts)), max(max(map(len, responses)), 1)
    input_ids = torch.full((len(prompts), P + R), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, (prompt, response) in enumerate(zip(prompts, responses)):
        span = slice(P - len(prompt), P + len(response))
        input_ids[row, span] = torch.tensor(prompt + response, dtype=torch.long)
        mask[row, span] = 1
    return input_ids, mask, R


@dataclass(frozen=True)
class PackedLayout:
    """Sequences packed into rows, and where each response token's prediction lands."""

    input_ids: torch.Tensor  # (K, L) the packed rows
    position_ids: torch.Tensor  # (K, L) as in the padded layout: 0, 1, ... from each sequence's start
    predictors: torch.Tensor  # (N,) flat index into K*L of the hidden state predicting each response token
    rows: list[list[int]]  # the padded-batch rows in each packed row, in order
    # (K, L, L) query may attend key, when shared prompts need more than restarting positions
    attention: torch.Tensor | None = None


def first_fit_rows(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` packed first-fit-decreasing into bins of at most ``max_tokens``.

    Longest first (ties by index, so the packing is deterministic); a length above
    ``max_tokens`` gets a bin of its own, since a sequence is never split.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        slot = next((b for b, free in enumerate(room) if free >= lengths[i]), None)
        if slot is None:
            bins.append([i])
            room.append(max_tokens - lengths[i])
        else:
            bins[slot].append(i)
            room[slot] -= lengths[i]
    return bins


def pack_layout(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_length: int,
    max_tokens: int,
    prompt_index: torch.Tensor | None = None,
) -> PackedLayout:
    """The padded batch (B, P+R) repacked without padding into rows of at most ``max_tokens``.

    Each row's attended prompt tokens then response tokens form one sequence, at the positions
    ``position_ids_from_mask`` gives them in the padded layout; the next sequence restarts at 0,
    and so does a row's trailing filler (a sequence of its own that no real token attends to).
    With ``prompt_index``, rows with equal ids are one unit: their prompt once, then each row's
    response at the positions following the prompt, each attending to the prompt and to itself
    only (``attention``; restarting positions cannot express that). ``predictors`` lists, in the
    row-major order of the valid response tokens (``attention_mask[:, -R:]``), the flat index of
    the token whose hidden state predicts each one.
    """
    B, T = input_ids.shape
    P, device = T - response_length, input_ids.device
    keep = attention_mask.bool()
    prompts = [input_ids[i, :P][keep[i, :P]] for i in range(B)]
    responses = [input_ids[i, P:][keep[i, P:]] for i in range(B)]
    units: dict[int, list[int]] = {}
    for i, key in enumerate(range(B) if prompt_index is None else prompt_index.tolist()):
        units.setdefault(key, []).append(i)
    groups = list(units.values())
    for group in groups:
        if any(not torch.equal(prompts[i], prompts[group[0]]) for i in group):
            raise ValueError("pack_layout: rows with the same prompt_index have different prompt tokens")
        if not len(prompts[group[0]]) and any(len(responses[i]) for i in group):
            raise ValueError("pack_layout: a response token has no token before it (empty prompt)")
    lengths = [len(prompts[g[0]]) + sum(len(responses[i]) for i in g) for g in groups]
    bins = first_fit_rows(lengths, max_tokens) or [[]]
    L = max(1, max(sum(lengths[j] for j in b) for b in bins))
    packed = torch.zeros((len(bins), L), dtype=input_ids.dtype, device=device)
    positions = torch.zeros((len(bins), L), dtype=torch.long, device=device)
    # unit: which prompt-and-responses each token belongs to; part: 0 prompt, s > 0 the s-th response
    unit = torch.zeros((len(bins), L), dtype=torch.long, device=device)
    part = torch.zeros((len(bins), L), dtype=torch.long, device=device)
    last_prompt = torch.zeros(B, dtype=torch.long, device=device)
    response_start = torch.zeros(B, dtype=torch.long, device=device)
    count = 0
    for k, b in enumerate(bins):
        offset = 0
        for j in b:
            count += 1
            prompt = prompts[groups[j][0]]
            p = len(prompt)
            packed[k, offset : offset + p] = prompt
            positions[k, offset : offset + p] = torch.arange(p, device=device)
            unit[k, offset : offset + p] = count
            last_prompt[groups[j]] = k * L + offset + p - 1
            offset += p
            for s, i in enumerate(groups[j], 1):
                r = len(responses[i])
                packed[k, offset : offset + r] = responses[i]
                positions[k, offset : offset + r] = torch.arange(p, p + r, device=device)
                unit[k, offset : offset + r], part[k, offset : offset + r] = count, s
                response_start[i] = k * L + offset
                offset += r
        count += 1
        positions[k, offset:] = torch.arange(L - offset, device=device)
        unit[k, offset:] = count
    valid = keep[:, P:]
    index = valid.long().cumsum(1)[valid] - 1  # of each response token within its response
    row_of = torch.arange(B, device=device)[:, None].expand(B, response_length)[valid]
    # The last prompt token predicts response token 0; response token t predicts token t+1.
    predictors = torch.where(index == 0, last_prompt[row_of], response_start[row_of] + index - 1)
    attention = None
    if prompt_index is not None:
        causal = torch.ones(L, L, dtype=torch.bool, device=device).tril()
        same_unit = unit[:, :, None] == unit[:, None, :]
        visible = (part[:, None, :] == 0) | (part[:, :, None] == part[:, None, :])
        attention = causal & same_unit & visible
    rows = [[i for j in b for i in groups[j]] for b in bins]
    return PackedLayout(packed, positions, predictors, rows, attention)


def _attention_mask_4d(allowed: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """(K, L, L) allowed pairs as the 4D mask the model's attention implementation takes as is."""
    implementation = model.config._attn_implementation
    if implementation == "sdpa":
        return allowed[:, None]
    if implementation == "eager":
        dtype = next(model.parameters()).dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )[:, None]
    raise ValueError(f"pack_tokens with prompt_index needs sdpa or eager attention, not {implementation!r}")


def _chunk_logprobs(
    hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module, temperature: float, with_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (N, H), targets (N,) -> log p(target) (N,), entropy (N,) (zeros unless asked)."""
    logits = lm_head(hidden).float()
    if temperature != 1.0:
        logits = logits / temperature
    log_norm = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_norm
    if with_entropy:
        entropy = log_norm - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    else:
        entropy = torch.zeros_like(logprobs)
    return logprobs, entropy


def token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_length: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    chunk_size: int = 1024,
    prompt_index: torch.Tensor | None = None,
    num_chunks: int | None = None,
    pack_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of the response tokens (the last ``response_length`` columns) under ``model``.

    Args:
        model: a transformers causal LM whose logits are ``lm_head(decoder(x))`` (Llama, Qwen2,
            Mistral, ...; not models with final-logit soft-capping).
        input_ids, attention_mask: (B, P+R), left-padded prompts then right-padded responses.
        response_length: R.
        temperature: logits are divided by it, as at sampling time (must be > 0).
        with_entropy: also return the entropy of each predicted distribution.
        chunk_size: response tokens projected to the vocabulary at once (memory bound).
        num_chunks: instead, project in exactly this many pieces (some may be empty). Under
            ZeRO-3 each call of the head gathers its weight in a collective, so data-parallel
            ranks must call it equally often whatever their token counts: give a number
            derived from the configured batch shape, e.g. ceil(rows * max_new_tokens / 1024).
        prompt_index: (B,) integer id of each row's prompt; rows with equal ids must have equal
            prompt columns (checked), and their prompt is run once. None: every row on its own.
            Needs a decoder that takes ``past_key_values`` and a model without activation
            checkpointing in training mode (transformers drops the cache there).
        pack_tokens: > 0: run the decoder on the rows packed without padding into rows of at
            most this many tokens (``pack_layout``; one decoder call whatever the packing, so
            ranks stay in step). Needs an attention implementation that reads packed
            ``position_ids`` (sdpa, eager, flash-attention); with ``prompt_index`` too, each
            prompt is packed once before its rows' responses, under an explicit mask (sdpa
            or eager), and activation checkpointing is fine (no cache is involved).

    Returns:
        ``(logprobs, entropy)``, each (B, R) float32; ``entropy`` is None unless asked. Padding
        positions (attention_mask 0) hold 0. Gradients flow to the model when grad is enabled.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < response_length < input_ids.shape[1]:
        raise ValueError(f"response_length {response_length} must be in [1, {input_ids.shape[1] - 1}]")
    if input_ids.shape != attention_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} differ")
    if num_chunks is not None and num_chunks < 1:
        raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
    if prompt_index is not None and prompt_index.shape != input_ids.shape[:1]:
        raise ValueError(f"prompt_index has shape {tuple(prompt_index.shape)}, expected ({input_ids.shape[0]},)")
    if pack_tokens < 0:
        raise ValueError(f"pack_tokens must be >= 0, got {pack_tokens}")
    full_response_length = response_length
    input_ids, attention_mask, response_length = _trim_padding(input_ids, attention_mask, response_length)
    decoder, lm_head = model.get_decoder(), model.get_output_embeddings()
    targets = input_ids[:, -response_length:]
    valid = attention_mask[:, -response_length:].bool()
    if pack_tokens:
        layout = pack_layout(input_ids, attention_mask, response_length, pack_tokens, prompt_index)
        # Without a mask and a cache transformers reads the packing from the position ids (a
        # cache, which use_cache would create, turns that detection off); shared prompts need
        # their own mask.
        mask = None if layout.attention is None else _attention_mask_4d(layout.attention, model)
        hidden = decoder(
            input_ids=layout.input_ids, position_ids=layout.position_ids, attention_mask=mask, use_cache=False
        ).last_hidden_state
        flat_hidden = hidden.flatten(0, 1)[layout.predictors]
    else:
        if prompt_index is None:
            hidden = decoder(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask)
            ).last_hidden_state
            # The hidden state at column t predicts the token at column t+1.
            hidden = hidden[:, -response_length - 1 : -1]
        else:
            hidden = _shared_prompt_hidden(model, decoder, input_ids, attention_mask, response_length, prompt_index)
        flat_hidden = hidden[valid]
    flat_targets = targets[valid]

    logprob_chunks, entropy_chunks = [], []
    use_checkpoint = torch.is_grad_enabled() and flat_hidden.requires_grad
    N = flat_targets.shape[0]
    if num_chunks is None:
        bounds = [*range(0, N, chunk_size), N] if N else []
    else:
        bounds = [N * i // num_chunks for i in range(num_chunks + 1)]
    for start, end in zip(bounds[:-1], bounds[1:]):
        args = (flat_hidden[start:end], flat_targets[start:end], lm_head, temperature, with_entropy)
        if use_checkpoint:
            lp, ent = checkpoint(_chunk_logprobs, *args, use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs(*args)
        logprob_chunks.append(lp)
        entropy_chunks.append(ent)

    def scatter(chunks: list[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(valid.shape, dtype=torch.float32, device=input_ids.device)
        if chunks:
            out = out.masked_scatter(valid, torch.cat(chunks))
        # Back to the caller's R columns (trailing all-padding columns were trimmed).
        return torch.nn.functional.pad(out, (0, full_response_length - response_length))

    return scatter(logprob_chunks), scatter(entropy_chunks) if with_entropy else None


def _trim_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Drop leading prompt columns and trailing response columns that are padding in every row.

    At least one prompt column and one response column stay, so the shapes remain valid.
    """
    prompt_length = input_ids.shape[1] - response_length
    used_prompt = attention_mask[:, :prompt_length].any(0).nonzero()
    first = min(int(used_prompt[0]), prompt_length - 1) if len(used_prompt) else prompt_length - 1
    used_response = attention_mask[:, prompt_length:].any(0).nonzero()
    kept_response = int(used_response[-1]) + 1 if len(used_response) else 1
    end = prompt_length + kept_response
    return input_ids[:, first:end], attention_mask[:, first:end], kept_response


def _shared_prompt_hidden(
    model: torch.nn.Module,
    decoder: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_length: int,
    prompt_index: torch.Tensor,
) -> torch.Tensor:
    """(B, R, H) hidden states that predict the response tokens, each distinct prompt run once."""
    B, T = input_ids.shape
    P = T - response_length
    _, inverse = torch.unique(prompt_index, return_inverse=True)
    rows = torch.arange(B, device=input_ids.device)
    # The first row of each prompt id stands for all its rows (amin: deterministic).
    first = torch.full((int(inverse.max()) + 1,), B, device=input_ids.device).scatter_reduce(0, inverse, rows, "amin")
    prompt_ids, prompt_mask = input_ids[first, :P], attention_mask[first, :P]
    if not (torch.equal(prompt_ids[inverse], input_ids[:, :P]) and torch.equal(prompt_mask[inverse], attention_mask[:, :P])):
        raise ValueError("token_logprobs: rows with the same prompt_index have different prompt tokens or masks")
    positions = position_ids_from_mask(attention_mask)
    cache = DynamicCache(config=model.config)
    prompt_hidden = decoder(
        input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions[first, :P],
        past_key_values=cache, use_cache=True,
    ).last_hidden_state
    if cache.get_seq_length() != P:
        raise RuntimeError("token_logprobs: the decoder kept no key/value cache (activation checkpointing in "
                           "training mode drops it); call without prompt_index")
    cache.batch_select_indices(inverse)
    response_hidden = decoder(
        input_ids=input_ids[:, P:], attention_mask=attention_mask, position_ids=positions[:, P:],
        past_key_values=cache, use_cache=True,
    ).last_hidden_state
    # The last prompt column predicts response token 0; response column t predicts token t+1.
    return torch.cat([prompt_hidden[inverse, -1:], response_hidden[:, :-1]], dim=1)

"""Padding-free packed forwards (``token_logprobs(..., pack_tokens=N)``) against per-row forwards."""

import pytest
import torch

from rl_reason.models import pack_layout, padded_batch, position_ids_from_mask, tiny_model, token_logprobs
from rl_reason.models.logprobs import first_fit_rows


def random_rows(vocab_size, seed, prompt_lengths=(5, 3, 1, 7, 2, 4), response_lengths=(4, 6, 2, 0, 5, 3)):
    gen = torch.Generator().manual_seed(seed)
    tokens = lambda n: torch.randint(3, vocab_size, (n,), generator=gen).tolist()  # noqa: E731
    return [tokens(n) for n in prompt_lengths], [tokens(n) for n in response_lengths]


def per_row_logprobs(model, prompts, responses, R, with_entropy=False):
    """Each row run alone, with no padding at all: the reference a packed row must reproduce."""
    logps, ents = [], []
    for prompt, response in zip(prompts, responses):
        ids = torch.tensor([prompt + response])
        if not response:
            logps.append(torch.zeros(1, R))
            ents.append(torch.zeros(1, R))
            continue
        logp, ent = token_logprobs(model, ids, torch.ones_like(ids), len(response), with_entropy=True)
        logps.append(torch.nn.functional.pad(logp, (0, R - len(response))))
        ents.append(torch.nn.functional.pad(ent, (0, R - len(response))))
    return torch.cat(logps), torch.cat(ents)


def test_first_fit_rows_hand_computed():
    # longest first: 8 fills bin 0; 5 opens bin 1 (room 3); 4 opens bin 2 (room 4); 3 fits bin 1; 2 fits bin 2
    assert first_fit_rows([5, 3, 8, 2, 4], 8) == [[2], [0, 1], [4, 3]]
    assert first_fit_rows([10, 1], 4) == [[0], [1]]  # a sequence is never split: over-long gets its own row
    assert first_fit_rows([], 4) == []
    with pytest.raises(ValueError, match="max_tokens"):
        first_fit_rows([1], 0)


@pytest.mark.parametrize(
    "max_tokens, packed, positions",
    [
        (8, [[9, 2, 3, 4, 7, 8, 1]], [[0, 1, 2, 3, 0, 1, 2]]),
        # two rows; the shorter ends in one filler token at position 0 (a sequence of its own)
        (4, [[9, 2, 3, 4], [7, 8, 1, 0]], [[0, 1, 2, 3], [0, 1, 2, 0]]),
    ],
)
def test_pack_layout_hand_computed(max_tokens, packed, positions):
    ids, mask, R = padded_batch([[7, 8], [9]], [[1], [2, 3, 4]], pad_token_id=0)
    layout = pack_layout(ids, mask, R, max_tokens)
    assert layout.input_ids.tolist() == packed
    assert layout.position_ids.tolist() == positions
    # response tokens row-major: row 0's "1" is predicted by its "8"; row 1's "2 3 4" by "9 2 3"
    flat = layout.input_ids.flatten()
    assert flat[layout.predictors].tolist() == [8, 9, 2, 3]
    assert layout.predictors.tolist() == [5, 0, 1, 2]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("pack_tokens", [1, 12, 20, 1000])
def test_packed_logprobs_equal_per_row_forwards(arch, pack_tokens):
    """1: one sequence per row; 12 and 20: rows of several sequences; 1000: all in one row.
    Attention reaching across a sequence boundary would change every later sequence's values."""
    model, tokenizer = tiny_model(arch, seed=1)
    prompts, responses = random_rows(len(tokenizer), seed=2)
    ids, mask, R = padded_batch(prompts, responses)
    layout = pack_layout(ids, mask, R, pack_tokens)
    assert layout.input_ids.shape[1] <= max(pack_tokens, int(mask.sum(1).max()))
    if pack_tokens > 1:
        assert max(len(rows) for rows in layout.rows) > 1  # the test packs, so it can see crossing
    with torch.no_grad():
        logp, ent = token_logprobs(model, ids, mask, R, with_entropy=True, pack_tokens=pack_tokens, chunk_size=5)
        ref_logp, ref_ent = per_row_logprobs(model, prompts, responses, R)
    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)
    assert (logp[mask[:, -R:] == 0] == 0).all() and (logp[mask[:, -R:] == 1] < 0).all()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_packed_gradients_equal_padded_gradients(arch, checkpointing):
    """A loss on packed log-probs back-propagates the padded forward's gradients, also under
    activation checkpointing in training mode (which the shared-prompt path cannot use)."""
    model, tokenizer = tiny_model(arch, seed=3)
    prompts, responses = random_rows(len(tokenizer), seed=4)
    ids, mask, R = padded_batch(prompts, responses)
    weights = torch.randn(ids.shape[0], R, generator=torch.Generator().manual_seed(5))

    def grads(**kw):
        model.zero_grad()
        logp, ent = token_logprobs(model, ids, mask, R, with_entropy=True, chunk_size=4, **kw)
        ((logp * weights).sum() + 0.1 * ent.sum()).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    padded = grads()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    packed = grads(pack_tokens=16)
    for name, grad in padded.items():
        torch.testing.assert_close(packed[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert all(g.abs().sum() > 0 for g in packed.values())


def decoder_positions(model):
    """Records the input ids and position ids each decoder call receives."""
    seen = []
    hook = model.get_decoder().register_forward_pre_hook(
        lambda m, args, kwargs: seen.append((kwargs["input_ids"], kwargs["position_ids"])), with_kwargs=True
    )
    return seen, hook


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("pack_tokens", [0, 64])
@pytest.mark.parametrize("left_pad", [1, 6])
def test_left_padding_never_shifts_positions(arch, pack_tokens, left_pad):
    """A row behind ``left_pad`` padding columns gets positions 0, 1, ... on its first real token
    (padded and packed layouts alike) and the log-probs it has alone, unpadded."""
    model, tokenizer = tiny_model(arch, seed=6)
    prompt, response = random_rows(len(tokenizer), seed=7, prompt_lengths=(4,), response_lengths=(5,))
    alone_ids, alone_mask, R = padded_batch(prompt, response)
    ids, mask = (torch.nn.functional.pad(t, (left_pad, 0)) for t in (alone_ids, alone_mask))
    assert (ids[:, left_pad:] == alone_ids).all() and not mask[:, :left_pad].any()
    seen, hook = decoder_positions(model)
    with torch.no_grad():
        alone, _ = token_logprobs(model, alone_ids, alone_mask, R)
        # trimming would drop all-padding columns: a second, longer row keeps the padding in place
        other_ids, other_mask, _ = padded_batch([[5] * (4 + left_pad)], [[6] * 5])
        batch_ids, batch_mask = torch.cat([ids, other_ids]), torch.cat([mask, other_mask])
        seen.clear()
        padded, _ = token_logprobs(model, batch_ids, batch_mask, R, pack_tokens=pack_tokens)
    hook.remove()
    ((fed_ids, fed_positions),) = seen
    if pack_tokens:  # the row's tokens, unpadded, wherever packing put them
        starts = [
            (row, col)
            for row in range(fed_ids.shape[0])
            for col in range(fed_ids.shape[1] - 8)
            if fed_ids[row, col : col + 9].tolist() == alone_ids[0].tolist()
        ]
        ((row, col),) = starts
        assert fed_positions[row, col : col + 9].tolist() == list(range(9))
    else:
        assert fed_positions[0, mask[0].bool()].tolist() == list(range(9))
        assert fed_positions.tolist() == position_ids_from_mask(batch_mask).tolist()
    torch.testing.assert_close(padded[:1], alone, atol=1e-5, rtol=1e-5)


def test_packing_runs_one_decoder_call():
    """One decoder call however many packed rows (ranks stay in step)."""
    model, tokenizer = tiny_model("llama", seed=8)
    prompts, responses = random_rows(len(tokenizer), seed=9)
    ids, mask, R = padded_batch(prompts, responses)
    seen, hook = decoder_positions(model)
    with torch.no_grad():
        token_logprobs(model, ids, mask, R, pack_tokens=8)
    assert len(seen) == 1 and seen[0][0].shape[0] == len(pack_layout(ids, mask, R, 8).rows) > 1
    # a rank left without rows runs the same call on a placeholder row of two pad tokens
    placeholder = torch.zeros(1, 2, dtype=torch.long)
    with torch.no_grad():
        logp, _ = token_logprobs(model, placeholder, torch.ones_like(placeholder), 1, pack_tokens=8, num_chunks=3)
    hook.remove()
    assert logp.shape == (1, 1) and len(seen) == 2
    with pytest.raises(ValueError, match="pack_tokens"):
        token_logprobs(model, ids, mask, R, pack_tokens=-1)


def grouped_rows(vocab_size, seed):
    """Three prompts (5, 2, 7 tokens), three responses each (0-6 tokens), rows shuffled."""
    gen = torch.Generator().manual_seed(seed)
    tokens = lambda n: torch.randint(3, vocab_size, (n,), generator=gen).tolist()  # noqa: E731
    shared = [tokens(5), tokens(2), tokens(7)]
    rows = [(g, shared[g], tokens((2 * j + 3 * g) % 7)) for g in range(3) for j in range(3)]
    rows = [rows[i] for i in torch.randperm(len(rows), generator=gen).tolist()]
    return [p for _, p, _ in rows], [r for _, _, r in rows], torch.tensor([g for g, _, _ in rows])


def test_shared_prompt_layout_hand_computed():
    """Prompt [7, 8] once, then its two responses, each at the positions after the prompt."""
    ids, mask, R = padded_batch([[7, 8], [9], [7, 8]], [[1], [2, 3], [4, 5]], pad_token_id=0)
    layout = pack_layout(ids, mask, R, 100, prompt_index=torch.tensor([0, 1, 0]))
    assert layout.rows == [[0, 2, 1]]
    assert layout.input_ids.tolist() == [[7, 8, 1, 4, 5, 9, 2, 3]]
    assert layout.position_ids.tolist() == [[0, 1, 2, 2, 3, 0, 1, 2]]
    assert layout.input_ids.flatten()[layout.predictors].tolist() == [8, 9, 2, 8, 4]
    allowed = layout.attention[0].int().tolist()
    assert allowed[3] == [1, 1, 0, 1, 0, 0, 0, 0]  # "4" sees its prompt and itself, not response "1"
    assert allowed[4] == [1, 1, 0, 1, 1, 0, 0, 0]
    assert allowed[6] == [0, 0, 0, 0, 0, 1, 1, 0]  # the next unit sees nothing of the first
    with pytest.raises(ValueError, match="different prompt tokens"):
        pack_layout(ids, mask, R, 100, prompt_index=torch.tensor([0, 0, 0]))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("pack_tokens", [1, 30, 1000])
def test_packed_shared_prompts_equal_per_row_forwards(arch, attention, pack_tokens):
    """Each prompt packed once before its rows' responses: per-row log-probs, entropies and
    gradients (the prompt's gradient sums over its rows)."""
    model, tokenizer = tiny_model(arch, seed=10)
    model.set_attn_implementation(attention)
    prompts, responses, groups = grouped_rows(len(tokenizer), seed=11)
    ids, mask, R = padded_batch(prompts, responses)
    if pack_tokens > 1:
        assert max(len(rows) for rows in pack_layout(ids, mask, R, pack_tokens, groups).rows) > 3
    logp, ent = token_logprobs(model, ids, mask, R, with_entropy=True, prompt_index=groups, pack_tokens=pack_tokens)
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref_logp, ref_ent = per_row_logprobs(model, prompts, responses, R)
    (ref_logp.sum() + 0.1 * ref_ent.sum()).backward()
    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)

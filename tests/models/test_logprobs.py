import pytest
import torch

from rl_reason.models import padded_batch, position_ids_from_mask, tiny_model, token_logprobs


def naive_logprobs(model, input_ids, attention_mask, response_length, temperature=1.0):
    """Full (B, T, V) log-softmax, the reference that token_logprobs must match."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask)).logits
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)[:, -response_length - 1 : -1]
    chosen = logp.gather(-1, input_ids[:, -response_length:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    mask = attention_mask[:, -response_length:].float()
    return chosen * mask, entropy * mask


def make_batch(vocab_size, seed=0):
    """Left-padded prompts (lengths 5, 3, 1) then right-padded responses (lengths 4, 6, 2)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = lambda n: torch.randint(3, vocab_size, (n,), generator=gen).tolist()  # noqa: E731
    return padded_batch([tokens(5), tokens(3), tokens(1)], [tokens(4), tokens(6), tokens(2)])


def test_padded_batch_layout():
    ids, mask, R = padded_batch([[7, 8], [9]], [[1], [2, 3, 4]], pad_token_id=0)
    assert R == 3
    assert ids.tolist() == [[7, 8, 1, 0, 0], [0, 9, 2, 3, 4]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_matches_naive_log_softmax(arch, temperature, chunk_size):
    model, tokenizer = tiny_model(arch, seed=1)
    ids, mask, R = make_batch(len(tokenizer))
    with torch.no_grad():
        logp, ent = token_logprobs(model, ids, mask, R, temperature=temperature, with_entropy=True, chunk_size=chunk_size)
        ref_logp, ref_ent = naive_logprobs(model, ids, mask, R, temperature)
    assert logp.shape == ent.shape == (3, R)
    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)
    assert (logp[mask[:, -R:] == 0] == 0).all()
    assert (logp[mask[:, -R:] == 1] < 0).all()


def test_padding_does_not_change_a_row():
    """A row's log-probs are the same alone and inside a padded batch."""
    model, tokenizer = tiny_model("llama", seed=2)
    ids, mask, R = make_batch(len(tokenizer), seed=3)
    with torch.no_grad():
        batch_logp, _ = token_logprobs(model, ids, mask, R)
        # row 1: prompt of 3 tokens, response of 6: no padding at all when cut out.
        alone, _ = token_logprobs(model, ids[1:2, 2:], mask[1:2, 2:], R)
    torch.testing.assert_close(batch_logp[1:2], alone, atol=1e-5, rtol=1e-5)


def test_gradients_match_naive_with_chunk_recomputation():
    model, tokenizer = tiny_model("qwen2", seed=4)
    ids, mask, R = make_batch(len(tokenizer), seed=5)
    logp, ent = token_logprobs(model, ids, mask, R, with_entropy=True, chunk_size=4)
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref_logp, ref_ent = naive_logprobs(model, ids, mask, R)
    (ref_logp.sum() + 0.1 * ref_ent.sum()).backward()
    for got, (name, p) in zip(grads, model.named_parameters()):
        torch.testing.assert_close(got, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert logp.requires_grad and all(g.abs().sum() > 0 for g in grads)


def make_grouped_batch(vocab_size, seed=0, extra_pad=(2, 3)):
    """Three prompts (5, 3, 7 tokens) with three responses each (1-6 tokens), rows shuffled, and
    ``extra_pad`` all-padding columns added before the prompts and after the responses."""
    gen = torch.Generator().manual_seed(seed)
    tokens = lambda n: torch.randint(3, vocab_size, (n,), generator=gen).tolist()  # noqa: E731
    prompts = [tokens(5), tokens(3), tokens(7)]
    rows = [(g, prompts[g], tokens(1 + (3 * j + g) % 6)) for g in range(3) for j in range(3)]
    rows = [rows[i] for i in torch.randperm(len(rows), generator=gen).tolist()]
    ids, mask, R = padded_batch([p for _, p, _ in rows], [r for _, _, r in rows])
    left, right = extra_pad
    ids, mask = (torch.nn.functional.pad(t, (left, right)) for t in (ids, mask))
    return ids, mask, R + right, torch.tensor([g for g, _, _ in rows])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_shared_prompt_forward_matches_naive_values_and_gradients(arch):
    """Each prompt run once, its cache gathered to its rows: same log-probs, entropies and
    gradients as the full forward of every row (the prompt's gradient sums over its rows)."""
    model, tokenizer = tiny_model(arch, seed=6)
    ids, mask, R, groups = make_grouped_batch(len(tokenizer), seed=7)
    logp, ent = token_logprobs(model, ids, mask, R, with_entropy=True, prompt_index=groups, chunk_size=5)
    (logp.sum() + 0.1 * ent.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref_logp, ref_ent = naive_logprobs(model, ids, mask, R)
    (ref_logp.sum() + 0.1 * ref_ent.sum()).backward()
    assert logp.shape == (9, R)
    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert (logp[:, -3:] == 0).all()  # trimmed padding columns come back as zeros


def test_shared_prompt_forward_runs_each_prompt_once():
    model, tokenizer = tiny_model("llama", seed=8)
    ids, mask, R, groups = make_grouped_batch(len(tokenizer), seed=9, extra_pad=(0, 0))
    seen = []
    hook = model.get_decoder().register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs["input_ids"].shape),
                                                     with_kwargs=True)
    with torch.no_grad():
        token_logprobs(model, ids, mask, R, prompt_index=groups)
    hook.remove()
    P = ids.shape[1] - R
    assert seen == [(3, P), (9, R)]


def test_shared_prompt_forward_refuses_rows_whose_prompts_differ():
    model, tokenizer = tiny_model("llama")
    ids, mask, R, groups = make_grouped_batch(len(tokenizer))
    wrong = groups.clone()
    wrong[0] = (groups[0] + 1) % 3
    with pytest.raises(ValueError, match="different prompt"):
        token_logprobs(model, ids, mask, R, prompt_index=wrong)
    with pytest.raises(ValueError, match="prompt_index has shape"):
        token_logprobs(model, ids, mask, R, prompt_index=groups[:-1])


@pytest.mark.parametrize("num_chunks", [1, 4, 40])
def test_fixed_number_of_head_projections(num_chunks):
    """num_chunks calls the head exactly that often (empty pieces included), same numbers."""
    model, tokenizer = tiny_model("llama", seed=10)
    ids, mask, R = make_batch(len(tokenizer), seed=11)
    head = model.get_output_embeddings()
    calls = []
    hook = head.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        logp, _ = token_logprobs(model, ids, mask, R, num_chunks=num_chunks)
        hook.remove()
        ref, _ = token_logprobs(model, ids, mask, R)
    assert len(calls) == num_chunks and sum(calls) == int(mask[:, -R:].sum())
    torch.testing.assert_close(logp, ref, atol=1e-6, rtol=1e-6)


def test_bad_arguments_are_named():
    model, tokenizer = tiny_model("llama")
    ids, mask, R = make_batch(len(tokenizer))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(model, ids, mask, R, temperature=0.0)
    with pytest.raises(ValueError, match="response_length"):
        token_logprobs(model, ids, mask, ids.shape[1])
    with pytest.raises(ValueError, match="attention_mask"):
        token_logprobs(model, ids, mask[:, 1:], R)
    with pytest.raises(ValueError, match="num_chunks"):
        token_logprobs(model, ids, mask, R, num_chunks=0)

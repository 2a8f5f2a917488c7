"""DPO family on preference pairs: DPO (sigmoid), cDPO (label smoothing), IPO, SimPO, ORPO.

The losses are ``rl_reason.algorithms.PREFERENCE_LOSSES``. The reference is the policy before
training, so its log-probs are computed once, before the first update, and cached with each
pair: no reference model stays in memory. With ``pairs.data`` the pairs are verifier-filtered
samples of the current policy (``rl-reason pairs``), and ``iterations > 1`` repeats
sample -> pairs -> DPO with the newest policy (iteration k in ``output_dir/iter_k``, the newest
policy as its reference).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rl_reason.trainers.common.encoding import as_text, encode
from rl_reason.trainers.minting import log_task, start_policy_run, task_accuracy
from rl_reason.trainers.offline import OfflineTrainer
from rl_reason.trainers.pair_data import PAIR_KEYS, load_rows, split_rows, train_eval_rows
from rl_reason.trainers.post_config import DPOConfig


def response_logps(model, tokenizer, prompts: list[str], responses: list[str], max_prompt_tokens: int,
                   max_response_tokens: int, device, prompt_index: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of response-token log-probs (B,) (with grad when enabled) and response lengths (B,);
    rows with equal ``prompt_index`` share one prompt forward (``token_logprobs``)."""
    from rl_reason.models import token_logprobs

    enc = encode(tokenizer, prompts, responses, max_prompt_tokens, max_response_tokens, device)
    index = None if prompt_index is None else prompt_index.to(enc.input_ids.device)
    # Head projections counted from the batch shape, not the token count: equal on every rank (ZeRO-3).
    head_chunks = -(-len(prompts) * max_response_tokens // 1024)
    logp, _ = token_logprobs(model, enc.input_ids, enc.attention_mask, response_length=enc.response_length,
                             prompt_index=index, num_chunks=head_chunks)
    return (logp * enc.response_mask).sum(-1), enc.lengths()


class CachedReferenceTrainer(OfflineTrainer):
    """An offline trainer whose reference is the policy it starts from: ``with_reference`` stores
    the reference log-probs in each row once, before any update (DPO family, KTO)."""

    def __init__(self, cfg, model, tokenizer, rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]):
        self.model, self.tokenizer = model, tokenizer
        self.cfg = cfg
        self.train_rows = self.with_reference(rows)
        self.eval_rows = self.with_reference(eval_rows)
        self.setup(cfg)

    def with_reference(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError


class DPOTrainer(CachedReferenceTrainer):
    name = "dpo"
    cfg: DPOConfig

    def logps(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chosen and rejected log-prob sums and lengths, one forward over 2B sequences in which
        each pair's prompt runs once (not with gradient checkpointing, which drops the cache)."""
        prompts = [as_text(r["prompt"], self.tokenizer, "prompt") for r in rows]
        responses = [as_text(r[k], self.tokenizer, k) for k in ("chosen", "rejected") for r in rows]
        B = len(rows)
        shared = None if self.cfg.train.gradient_checkpointing else torch.arange(B).repeat(2)
        logps, lengths = response_logps(self.model, self.tokenizer, prompts + prompts, responses,
                                        self.cfg.model.max_prompt_tokens, self.max_response_tokens, self.cfg.model.device,
                                        prompt_index=shared)
        return logps[:B], logps[B:], lengths[:B], lengths[B:]

    @torch.no_grad()
    def with_reference(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of ``rows`` carrying the current policy's log-prob sums as the reference."""
        if not self.cfg.loss.needs_reference:
            return list(rows)
        self.model.eval()
        out = []
        mb = self.cfg.train.micro_batch_size
        for i in range(0, len(rows), mb):
            chunk = rows[i : i + mb]
            c, r, _, _ = self.logps(chunk)
            out.extend({**row, "ref_chosen_logps": float(a), "ref_rejected_logps": float(b)}
                       for row, a, b in zip(chunk, c.tolist(), r.tolist()))
        return out

    def pair_losses(self, rows):
        from rl_reason.algorithms import PREFERENCE_LOSSES

        chosen, rejected, chosen_len, rejected_len = self.logps(rows)
        ref = {}
        if self.cfg.loss.needs_reference:
            dev = chosen.device
            ref = {"ref_chosen_logps": torch.tensor([r["ref_chosen_logps"] for r in rows], device=dev),
                   "ref_rejected_logps": torch.tensor([r["ref_rejected_logps"] for r in rows], device=dev)}
        loss = self.cfg.loss
        return PREFERENCE_LOSSES.get(loss.name)(chosen_logps=chosen, rejected_logps=rejected, chosen_lengths=chosen_len,
                                                rejected_lengths=rejected_len, beta=loss.beta,
                                                label_smoothing=loss.label_smoothing, gamma=loss.gamma, **ref)

    def micro_loss(self, rows):
        losses, metrics = self.pair_losses(rows)
        return losses.mean(), {f"train/{k}": float(v) for k, v in metrics.items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if not self.eval_rows:
            return {}
        sums: dict[str, float] = {}
        for chunk in self.eval_batches():
            losses, metrics = self.pair_losses(chunk)
            for k, v in {"loss": losses.mean(), **metrics}.items():
                sums[f"eval/{k}"] = sums.get(f"eval/{k}", 0.0) + float(v) * len(chunk) / len(self.eval_rows)
        return sums


def train(cfg: DPOConfig) -> Path:
    """Run DPO on a pairs file, or the verifier-filtered loop sample -> pairs -> DPO (iterated)."""
    from rl_reason.trainers.minting import mint_pairs

    return run_preference(cfg, DPOTrainer, PAIR_KEYS, {}, mint_pairs,
                          "no prompt had both a correct and an incorrect answer")


def run_preference(cfg, trainer_cls, keys: tuple[str, ...], types: dict[str, type], mint, none_minted: str) -> Path:
    """The preference trainers' run (DPO family, KTO): train ``trainer_cls`` on the rows of
    ``cfg.data`` (``keys`` required, ``types`` checked), or, with ``cfg.pairs.data``, repeat
    ``mint`` (the policy's own graded samples -> rows) -> train ``cfg.iterations`` times, each
    round sampling with and referencing the newest policy (round k in ``output_dir/iter_k``)."""
    from rl_reason.models import load_model

    run_dir, model, tokenizer = start_policy_run(cfg)
    if not cfg.pairs.data:
        rows = load_rows(cfg.data.train, keys, cfg.data.limit, types)
        train_rows, eval_rows = train_eval_rows(rows, cfg.data, cfg.seed, lambda path: load_rows(path, keys, types=types))
        trainer = trainer_cls(cfg, model, tokenizer, train_rows, eval_rows)
        trainer.train()
        trainer.save_final()
    else:
        for it in range(1, cfg.iterations + 1):
            it_dir = run_dir / f"iter_{it}"
            if (it_dir / "final").is_dir():  # finished before a restart: continue from it
                model, tokenizer = load_model(it_dir / "final", dtype=cfg.model.dtype, device=cfg.model.device,
                                              load_in_4bit=cfg.model.load_in_4bit)
                continue
            rows = mint(model, tokenizer, cfg.pairs, it_dir / "pairs", cfg.seed + it, cfg.log.progress)
            if not rows:
                raise RuntimeError(f"iteration {it}: {none_minted} ({it_dir / 'pairs'}); raise pairs.n or pairs.limit")
            train_rows, eval_rows = split_rows(rows, cfg.data.eval_fraction, cfg.seed)
            it_cfg = dataclasses.replace(cfg, output_dir=str(it_dir))
            trainer = trainer_cls(it_cfg, model, tokenizer, train_rows, eval_rows)
            trainer.train()
            trainer.save_final()
            model = trainer.model  # with LoRA the adapted policy: the next iteration's reference and start
            if cfg.task_eval.data:
                log_task(run_dir, f"iter_{it}", task_accuracy(model, tokenizer, cfg.task_eval, cfg.seed, cfg.log.progress))
        final = run_dir / "final"
        if not final.exists():
            (final).symlink_to(Path(f"iter_{cfg.iterations}") / "final")
    if cfg.task_eval.data and not cfg.pairs.data:
        log_task(run_dir, "after", task_accuracy(model, tokenizer, cfg.task_eval, cfg.seed, cfg.log.progress))
    return run_dir

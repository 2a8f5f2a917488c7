"""GRPO with all five DAPO parts, as a loop that reads like the algorithm.

Per step:
  1. sample prompts (seeded, resumable) and roll out ``n`` completions per prompt;
  2. score them with the verifiers (weighted math/code/format reward, soft overlong penalty);
     with dynamic sampling, drop groups whose rewards are all equal and sample more prompts
     until the batch is full (surplus groups wait in a buffer for the next step);
  3. recompute old log-probs with the trainer (the rollout engine's are only compared to them:
     the mismatch KL and ratio tail are logged, and optionally corrected by truncated IS);
  4. advantages per group (``rl_reason.algorithms.ADVANTAGES``);
  5. ``ppo_epochs`` x mini-batches x micro-batches of policy-loss updates, the loss aggregated
     with global token/sequence counts so micro-batching does not change it;
  6. push the new weights to the rollout engine.
Departures from vanilla GRPO are config switches: clip-higher (``clip_high``), token-mean
aggregation, overlong filtering and punishment, dynamic sampling, KL weight 0 by default (no
reference model is loaded then).
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_reason.algorithms import (
    ADVANTAGES,
    POLICY_LOSSES,
    aggregate_loss,
    filter_groups_by_std,
    kl_penalty,
    logprob_mismatch_metrics,
    overlong_filter_mask,
    soft_overlong_penalty,
    step_normalisers,
    truncated_is_weights,
)
from rl_reason.distributed import setup as dist
from rl_reason.distributed.engine import build_train_engine
from rl_reason.io import JsonlAppender
from rl_reason.models.lora import adapter_disabled, is_lora
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.common.metrics import open_run_logs
from rl_reason.trainers.common.sampler import PassRateTable
from rl_reason.trainers.common.schedule import lr_factor
from rl_reason.trainers.common.timers import PhaseTimers
from rl_reason.trainers.curriculum import curriculum_metrics, observe_groups, prompt_sampler
from rl_reason.trainers.entropy_control import EntropyControl, policy_loss_kwargs
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.reward_shaping import component_metrics, shaped_rewards
from rl_reason.trainers.rewards import RewardFn, Scored, VerifierReward
from rl_reason.trainers.signal import (
    GroupOutcome,
    SignalMonitor,
    SignalStats,
    diagnose,
    signal_stats,
)


@dataclass
class Group:
    """The scored completions of one prompt; ``valid[i]`` False drops completion i from the loss."""

    example_index: int
    completions: list[Any]  # rl_reason.rollout.Completion
    scored: list[Scored]
    rewards: list[float] = field(default_factory=list)

    @property
    def kept(self) -> list[int]:
        return [i for i, s in enumerate(self.scored) if s.valid]

    def has_signal(self, eps: float) -> bool:
        """DAPO dynamic sampling: do the scorable rewards differ (std > eps)?"""
        scores = torch.tensor([self.rewards[i] for i in self.kept], dtype=torch.float32)
        return bool(filter_groups_by_std(scores, torch.zeros(len(scores), dtype=torch.long), eps).keep.all())


@dataclass
class Batch:
    """Tensors of one step. Layout: left-padded prompts then right-padded responses, (B, P + R)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor  # (B, R) float: 1 on response tokens that enter the loss
    rollout_logprobs: torch.Tensor | None  # (B, R) from the engine, None when it gives none
    scores: torch.Tensor  # (B,)
    group_ids: torch.Tensor  # (B,)

    @property
    def response_length(self) -> int:
        return self.response_mask.shape[1]

    def rows(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[index], "attention_mask": self.attention_mask[index]}


def grouped_permutation(group_ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Row indices in a random order of groups, each group's rows together.

    Micro-batches cut from it hold whole groups (when their size is a multiple of the group
    size), so a shared-prompt forward runs each prompt once; the loss does not depend on how rows
    are split into micro-batches, only the shuffling of groups across mini-batches matters.
    """
    groups = torch.unique(group_ids)
    shuffled = groups[torch.randperm(len(groups), generator=generator).to(groups.device)]
    return torch.cat([(group_ids == g).nonzero().flatten() for g in shuffled]) if len(groups) else group_ids.new_zeros(0)


def step_seed(seed: int, step: int, round_: int) -> int:
    """Sampling seed of one rollout round: a resumed run regenerates exactly what it would have."""
    return (seed * 1_000_003 + step * 101 + round_) % (2**31 - 1)


class GRPOTrainer:
    def __init__(self, cfg: GRPOConfig, reward_fn: RewardFn | None = None) -> None:
        from rl_reason.data_pipelines import load_dataset
        from rl_reason.rollout import get_engine

        self.cfg = cfg
        self.dist = dist.init_distributed(cfg.distributed.backend, cfg.distributed.timeout_s, cfg.model.device)
        self.prompts_per_rank = _share_per_rank(cfg, self.dist.world_size)
        self.run_dir = Path(cfg.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _seed_everything(cfg.seed)
        data_dir, fields = cfg.data.data_dir or None, cfg.data.fields or None
        self.train_examples = load_dataset(cfg.data.train, data_dir=data_dir, field_map=fields, limit=cfg.data.train_limit or None)
        self.eval_examples = (
            load_dataset(cfg.data.eval, data_dir=data_dir, field_map=fields, limit=cfg.data.eval_limit or None)
            if cfg.data.eval else []
        )
        self.model, self.tokenizer = _load_policy(cfg)
        self.train_examples, self.prompts = self._fitting_prompts(self.train_examples, cfg.data.train)
        self.eval_examples, _ = self._fitting_prompts(self.eval_examples, cfg.data.eval)
        self.ref_model = None
        if cfg.algorithm.kl_coef > 0:
            # With LoRA the reference is the policy with its adapter off (adapter_disabled): no copy.
            self.ref_model = self.model if is_lora(self.model) else _load_policy(cfg)[0].requires_grad_(False)
        if cfg.rollout.engine == "vllm":  # its own copy of the weights, refreshed by load_state_from
            self.engine = get_engine("vllm", model=cfg.model.name, tokenizer=self.tokenizer, dtype=cfg.model.dtype,
                                     gpu_memory_utilization=cfg.rollout.gpu_memory_utilization, seed=cfg.seed,
                                     max_lora_rank=cfg.model.lora.r)
        else:  # shares the policy module: no copy, nothing to sync
            self.engine = get_engine("hf", model=self.model, tokenizer=self.tokenizer)
        self.train_engine = _build_train_engine(self.model, cfg, self.prompts_per_rank)
        self.extra_engines: dict[str, Any] = {}  # further trained models checkpointed with the policy (PPO's critic)
        # Each rank draws from its own shard of the prompts (disjoint, seeded, resumable per rank).
        self.prompt_shard = list(range(self.dist.rank, len(self.train_examples), self.dist.world_size))
        self.pass_rates = PassRateTable(cfg.curriculum.ema)
        self.sampler = prompt_sampler(cfg, [self.train_examples[i].id for i in self.prompt_shard], self.pass_rates)
        self.carried: list[Group] = []  # surplus valid groups from dynamic sampling
        self.entropy_control = EntropyControl(cfg)
        self.reward_fn = reward_fn or VerifierReward(
            cfg.reward.math_weight, cfg.reward.code_weight, cfg.reward.format_weight, cfg.reward.format_pattern,
            cfg.reward.verifier_timeout, cfg.reward.verifier_workers, cfg.reward.sandbox, cfg.reward.answer_format)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.timers = PhaseTimers()
        self.signal_monitor = SignalMonitor(cfg.signal.warn_after, cfg.signal.min_groups_with_variance)
        self.step = 0

    # ----------------------------------------------------------------- the loop
    def train(self) -> None:
        cfg = self.cfg
        self._resume()
        main = dist.is_main()
        self.metrics = open_run_logs(self.run_dir, cfg, main)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.train.steps, initial=self.step, desc=cfg.trainer, unit="step", disable=not (cfg.log.progress and main))
        try:
            if self.step == 0 and cfg.eval.every:
                self.metrics.log(0, self.evaluate())
            budget_end = time.perf_counter() + 60 * cfg.train.time_budget_min
            while self.step < cfg.train.steps:
                self.step += 1
                start = time.perf_counter()
                with self.timers("rollout_and_reward"):
                    groups, stats = self.collect_groups()
                warning = self.signal_monitor.update(self.signal, self.cfg.rollout.max_new_tokens, self.cfg.rollout.n)
                batch = self.build_batch(groups)
                with self.timers("old_logprobs"):
                    old_logprobs, ref_logprobs = self.reference_logprobs(batch)
                stats.update(self.mismatch_metrics(batch, old_logprobs))
                with self.timers("advantages"):
                    advantages = self.advantages(batch)
                with self.timers("update"):
                    stats.update(self.update_policy(batch, old_logprobs, ref_logprobs, advantages))
                with self.timers("sync_weights"), self.train_engine.full_weights():
                    self.engine.load_state_from(self.model)
                # Every rank agrees to stop (the clock is rank 0's), so collectives stay in step.
                last = self.step == cfg.train.steps or (
                    cfg.train.time_budget_min > 0 and dist.broadcast_flag(time.perf_counter() >= budget_end))
                if cfg.eval.every and (self.step % cfg.eval.every == 0 or last):
                    with self.timers("eval"):
                        stats.update(self.evaluate())
                stats.update(self.timers.pop())
                stats["time/step"] = time.perf_counter() - start
                stats["perf/tokens_per_s"] = float(batch.attention_mask.sum()) / stats["time/step"]
                stats = dist.mean_metrics(stats)  # per-rank figures averaged; tokens/s is then per rank
                stats.update(self.entropy_control.after_step(stats.get("actor/entropy")))
                self.metrics.log(self.step, stats)
                if last or (cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0):
                    self.save()
                bar.set_postfix(reward=f"{stats.get('reward/mean', float('nan')):.3f}",
                                acc=f"{stats.get('reward/accuracy', float('nan')):.2f}",
                                signal=f"{stats.get('signal/groups_with_variance', float('nan')):.2f}")
                bar.update(1)
                if warning and main:
                    tqdm.write(warning, file=sys.stderr)
                if last:
                    break
        finally:
            bar.close()
            self.metrics.close()
            close = getattr(self.reward_fn, "close", None)
            if close is not None:
                close()

    # ------------------------------------------------------------ rollout + reward
    def collect_groups(self) -> tuple[list[Group], dict[str, float]]:
        """Groups for one step. Without dynamic sampling: one round of ``prompts_per_step``.
        With it: carried groups first, then rounds of fresh prompts, keeping groups whose reward
        std exceeds ``std_eps``, until the batch is full or ``max_sampling_rounds`` is reached."""
        cfg = self.cfg
        want = self.prompts_per_rank
        dapo = cfg.dapo
        kept, drawn, rounds = list(self.carried[:want]), [], 0
        carried_in = len(kept)
        self.carried = self.carried[want:]
        dropped = 0
        while len(kept) < want and (rounds == 0 or (dapo.dynamic_sampling and rounds < dapo.max_sampling_rounds)):
            fresh = self.rollout_and_score([self.prompt_shard[i] for i in self.sampler.take(want)], rounds)
            drawn.extend(fresh)
            rounds += 1
            for g in fresh:
                if not g.kept:  # every completion unscorable (e.g. all verifier timeouts)
                    dropped += 1
                elif dapo.dynamic_sampling and not g.has_signal(dapo.std_eps):
                    dropped += 1
                elif len(kept) < want:
                    kept.append(g)
                else:
                    self.carried.append(g)
        stats = self.reward_metrics(drawn)
        stats.update(component_metrics([s for g in drawn for s in g.scored]))
        stats.update(curriculum_metrics(cfg, self.pass_rates, self.sampler))
        # Measured on every group drawn, before dynamic sampling keeps the ones with signal.
        self.signal = group_signal(drawn, dapo.std_eps)
        stats.update(self.signal.metrics())
        stats.update({"dapo/rounds": rounds, "dapo/kept_groups": len(kept) - carried_in, "dapo/dropped_groups": dropped,
                      "dapo/carried_in": carried_in, "dapo/carried_out": len(self.carried),
                      "dapo/batch_groups": len(kept)})
        if cfg.log.samples_every and self.step % cfg.log.samples_every == 0:
            self._write_samples(drawn[:2])
        return kept, stats

    def rollout_and_score(self, indices: list[int], round_: int) -> list[Group]:
        from rl_reason.rollout import SamplingParams

        cfg = self.cfg
        params = SamplingParams(temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, top_k=cfg.rollout.top_k,
                                max_new_tokens=cfg.rollout.max_new_tokens, stop=list(cfg.rollout.stop),
                                seed=step_seed(cfg.seed, self.step, round_))
        with self.timers("generate"), self.train_engine.full_weights():
            outputs = self.engine.generate([self.prompts[i] for i in indices], cfg.rollout.n, params)
        with self.timers("reward"):
            flat_examples = [self.train_examples[i] for i in indices for _ in range(cfg.rollout.n)]
            flat_scored = self.reward_fn(flat_examples, [c.text for group in outputs for c in group])
        rewards = shaped_rewards(cfg, flat_scored, [c for group in outputs for c in group], cfg.rollout.n)
        if cfg.dapo.overlong_buffer:
            lengths = torch.tensor([len(c.token_ids) for group in outputs for c in group])
            rewards += soft_overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.dapo.overlong_buffer,
                                             cfg.dapo.overlong_penalty)
        n = cfg.rollout.n
        groups = [Group(i, completions, flat_scored[j * n : (j + 1) * n], rewards[j * n : (j + 1) * n].tolist())
                  for j, (i, completions) in enumerate(zip(indices, outputs))]
        observe_groups(self.pass_rates, groups, self.train_examples)
        return groups

    def probe(self, num_prompts: int) -> SignalStats:
        """Roll out ``num_prompts`` training prompts (seeded, ``prompts_per_step`` at a time) with
        the recipe's sampling settings and measure their learning signal; trains nothing."""
        rng = random.Random(self.cfg.seed)
        indices = rng.sample(self.prompt_shard, min(num_prompts, len(self.prompt_shard)))
        groups: list[Group] = []
        for start in range(0, len(indices), self.prompts_per_rank):
            groups += self.rollout_and_score(indices[start : start + self.prompts_per_rank], start)
        return group_signal(groups, self.cfg.dapo.std_eps)

    def reward_metrics(self, groups: list[Group]) -> dict[str, float]:
        rewards = [r for g in groups for i, r in enumerate(g.rewards) if g.scored[i].valid]
        lengths = [len(c.token_ids) for g in groups for c in g.completions]
        truncated = [c.finish_reason == "length" for g in groups for c in g.completions]
        statuses = Counter(s.status for g in groups for s in g.scored)
        total = max(1, sum(statuses.values()))
        out = {
            "reward/mean": float(np.mean(rewards)) if rewards else float("nan"),
            "reward/std": float(np.std(rewards)) if rewards else float("nan"),
            "reward/accuracy": float(np.mean([s.correct for g in groups for s in g.scored])) if groups else float("nan"),
            "response/length_mean": float(np.mean(lengths)) if lengths else 0.0,
            "response/length_max": float(max(lengths, default=0)),
            "response/clipped_frac": float(np.mean(truncated)) if truncated else 0.0,
        }
        out.update({f"verifier/{status}": count / total for status, count in statuses.items()})
        waits = [s.slot_wait_s for g in groups if self.train_examples[g.example_index].task == "code" for s in g.scored]
        if waits:
            out["sandbox/slot_wait_s_mean"] = float(np.mean(waits))
        return out

    # ------------------------------------------------------------ tensors
    def build_batch(self, groups: list[Group]) -> Batch:
        """One row per kept completion; overlong filtering zeroes truncated rows' loss mask."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        rows = [(gi, g, i) for gi, g in enumerate(groups) for i in g.kept]
        if not rows:
            empty = torch.zeros(0, 1, dtype=torch.long)
            return Batch(empty, empty, empty.float(), None, torch.zeros(0), torch.zeros(0, dtype=torch.long))
        prompt_len = max(len(g.completions[i].prompt_token_ids) for _, g, i in rows)
        resp_len = max(1, max(len(g.completions[i].token_ids) for _, g, i in rows))
        B = len(rows)
        input_ids = torch.full((B, prompt_len + resp_len), pad, dtype=torch.long)
        attention = torch.zeros((B, prompt_len + resp_len), dtype=torch.long)
        resp_mask = torch.zeros((B, resp_len))
        have_rollout_lp = all(g.completions[i].logprobs is not None for _, g, i in rows)
        rollout_lp = torch.zeros((B, resp_len)) if have_rollout_lp else None
        scores, group_ids = torch.zeros(B), torch.zeros(B, dtype=torch.long)
        for b, (gi, g, i) in enumerate(rows):
            c = g.completions[i]
            p, r = list(c.prompt_token_ids), list(c.token_ids)
            input_ids[b, prompt_len - len(p) : prompt_len] = torch.tensor(p, dtype=torch.long)
            attention[b, prompt_len - len(p) : prompt_len] = 1
            if r:
                input_ids[b, prompt_len : prompt_len + len(r)] = torch.tensor(r, dtype=torch.long)
                attention[b, prompt_len : prompt_len + len(r)] = 1
                resp_mask[b, : len(r)] = 1.0
                if rollout_lp is not None:
                    rollout_lp[b, : len(r)] = torch.tensor(list(c.logprobs), dtype=torch.float32)
            scores[b] = g.rewards[i]
            group_ids[b] = gi
        if self.cfg.dapo.overlong_filter:
            keep = overlong_filter_mask(finish_reasons=[g.completions[i].finish_reason for _, g, i in rows])
            resp_mask *= keep[:, None].to(resp_mask.dtype)
        device = self.cfg.model.device
        return Batch(input_ids.to(device), attention.to(device), resp_mask.to(device),
                     None if rollout_lp is None else rollout_lp.to(device), scores.to(device), group_ids.to(device))

    def logprobs(self, model, batch: Batch, index: torch.Tensor, with_entropy: bool = False):
        from rl_reason.models import token_logprobs

        rows = batch.rows(index)
        t = self.cfg.train
        shared = batch.group_ids[index] if t.share_prompt_forward and not t.gradient_checkpointing else None
        # The same number of head projections on every rank, whatever its token count (ZeRO-3).
        head_chunks = -(-t.micro_batch_size * self.cfg.rollout.max_new_tokens // 1024)
        return token_logprobs(model, rows["input_ids"], rows["attention_mask"], response_length=batch.response_length,
                              temperature=self.cfg.rollout.temperature, with_entropy=with_entropy, prompt_index=shared,
                              num_chunks=head_chunks)

    @torch.no_grad()
    def reference_logprobs(self, batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Old log-probs from the trainer (None when the update is a single on-policy pass:
        then the update's own forward gives them, detached, saving one forward) and reference
        log-probs when the KL weight is non-zero."""
        B = batch.input_ids.shape[0]
        if B == 0:
            return None, None
        chunks, real = self.forward_chunks(B)
        on_policy = self.cfg.train.ppo_epochs * self.cfg.train.mini_batches == 1
        old = None if on_policy else torch.cat([self.logprobs(self.model, batch, ix)[0] for ix in chunks][:real])
        with adapter_disabled(self.ref_model):
            ref = torch.cat([self.logprobs(self.ref_model, batch, ix)[0] for ix in chunks[:real]]) if self.ref_model is not None else None
        return old, ref

    def forward_chunks(self, B: int) -> tuple[list[torch.Tensor], int]:
        """Row indices of the no-grad forwards over a batch of ``B`` rows, and how many are real.

        The list is padded with repeats of the last chunk to the count every rank runs with a
        full share: ZeRO-3 gathers the trained model's parameters in a collective on each forward,
        so a rank whose share lost groups must still run as many (its results are dropped).
        """
        micro = self.cfg.train.micro_batch_size
        chunks = list(torch.arange(B, device=self.cfg.model.device).split(micro))
        real = len(chunks)
        return chunks + [chunks[-1]] * (self.prompts_per_rank * self.cfg.rollout.n // micro - real), real

    @staticmethod
    def mismatch_metrics(batch: Batch, trainer_logprobs: torch.Tensor | None) -> dict[str, float]:
        """Rollout-vs-trainer log-prob mismatch (KL, ratio tail); on-policy steps compute it
        from the update's own forward instead (``trainer_logprobs`` is None here then)."""
        if trainer_logprobs is None or batch.rollout_logprobs is None or batch.input_ids.shape[0] == 0:
            return {}
        metrics = logprob_mismatch_metrics(trainer_logprobs, batch.rollout_logprobs, batch.response_mask)
        return {f"mismatch/{k.removeprefix('mismatch_')}": float(v) for k, v in metrics.items()}

    def advantages(self, batch: Batch) -> torch.Tensor:
        if batch.input_ids.shape[0] == 0:
            return torch.zeros_like(batch.response_mask)
        # Rows masked out by overlong filtering still count in their group's baseline.
        full = torch.ones_like(batch.response_mask)
        adv, _ = ADVANTAGES.get(self.cfg.algorithm.advantage)(
            response_mask=full, scores=batch.scores, group_ids=batch.group_ids,
            norm_by_std=self.cfg.algorithm.scale_by_std, eps=self.cfg.dapo.std_eps)
        return adv * batch.response_mask

    # ------------------------------------------------------------ update
    def update_policy(self, batch: Batch, old_logprobs, ref_logprobs, advantages) -> dict[str, float]:
        cfg, alg = self.cfg, self.cfg.algorithm
        B = batch.input_ids.shape[0]
        if B == 0:
            return {"actor/skipped_update": 1.0, "actor/lr": self.train_engine.lr}
        policy_loss = POLICY_LOSSES.get(alg.policy_loss)
        loss_kwargs = policy_loss_kwargs(cfg, step_seed(cfg.seed, self.step, 15485863))
        entropy_coef = self.entropy_control.coef
        gen = torch.Generator().manual_seed(step_seed(cfg.seed, self.step, 7919))
        sums: Counter[str] = Counter()
        updates = 0
        # On-policy (one update per batch): the update's forward is also the "old" policy.
        on_policy_logprobs = torch.zeros_like(batch.response_mask) if old_logprobs is None else None
        for _ in range(cfg.train.ppo_epochs):
            order = grouped_permutation(batch.group_ids, gen)
            for mini in order.tensor_split(cfg.train.mini_batches):
                self.train_engine.zero_grad()
                micros = list(mini.split(cfg.train.micro_batch_size))
                # Normalisers of the whole step over all ranks (aggregation.py). A short batch repeats
                # its last micro-batch with weight 0: every rank runs the configured number of backward
                # passes, which data-parallel reduction and DeepSpeed's accumulation boundary count on.
                norm = dist.global_normalisers(step_normalisers(batch.response_mask[m] for m in micros), self.dist.device)
                n_local = len(micros)
                micros += [micros[-1]] * (_micro_batches_per_update(cfg, self.prompts_per_rank) - n_local)
                for j, micro in enumerate(micros):
                    mask = batch.response_mask[micro]
                    logp, entropy = self.logprobs(self.model, batch, micro, with_entropy=True)
                    if on_policy_logprobs is not None:
                        on_policy_logprobs[micro] = logp.detach()
                    old = logp.detach() if old_logprobs is None else old_logprobs[micro]
                    is_weights = None
                    if alg.tis_cap > 0 and batch.rollout_logprobs is not None:
                        is_weights = truncated_is_weights(old, batch.rollout_logprobs[micro], cap=alg.tis_cap)
                    loss_mat, loss_stats = policy_loss(
                        logp=logp, old_logp=old, advantages=advantages[micro], response_mask=mask,
                        clip_low=alg.clip_low, clip_high=alg.clip_high, clip_ratio_c=alg.clip_ratio_c or None,
                        is_weights=is_weights, **loss_kwargs)
                    if ref_logprobs is not None:
                        kl = kl_penalty(logp, ref_logprobs[micro], kind=alg.kl_kind)
                        loss_mat = loss_mat + alg.kl_coef * kl
                        sums["actor/kl"] += float((kl.detach() * mask).sum())
                    if entropy_coef:
                        loss_mat = loss_mat - entropy_coef * entropy
                    loss = aggregate_loss(loss_mat, mask, alg.loss_agg_mode, global_num_tokens=norm.num_tokens,
                                          global_num_seqs=norm.num_seqs, max_len=cfg.rollout.max_new_tokens,
                                          dp_size=self.dist.world_size)
                    if j >= n_local:
                        self.train_engine.backward(loss * 0.0)
                        continue
                    self.train_engine.backward(loss)
                    n_tokens = float(mask.sum())
                    sums["actor/loss"] += float(loss.detach())
                    sums["actor/entropy"] += float((entropy.detach() * mask).sum())
                    for k, v in loss_stats.items():
                        sums[f"actor/{k}"] += float(v) * n_tokens
                    sums["tokens"] += n_tokens
                sums["actor/grad_norm"] += self.train_engine.step()
                updates += 1
        tokens = max(sums.pop("tokens"), 1.0)
        # Loss and grad norm average over optimizer updates, the rest over tokens.
        out = {k: v / updates if k in ("actor/loss", "actor/grad_norm") else v / tokens for k, v in sums.items()}
        out["actor/lr"] = self.train_engine.lr
        out["actor/updates"] = float(updates)
        if on_policy_logprobs is not None:
            out.update(self.mismatch_metrics(batch, on_policy_logprobs))
        return out

    # ------------------------------------------------------------ eval, checkpoints
    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy through the eval harness's grader (pass@k for eval.ks)."""
        from rl_reason.eval import evaluate, flat_metrics
        from rl_reason.rollout import SamplingParams

        ev = self.cfg.eval
        params = SamplingParams(temperature=ev.temperature, max_new_tokens=ev.max_new_tokens or self.cfg.rollout.max_new_tokens,
                                stop=list(self.cfg.rollout.stop), seed=self.cfg.seed)
        with self.train_engine.full_weights():
            summary = evaluate(self.engine, self.eval_examples, n=ev.n, ks=ev.ks, sampling_params=params,
                               template=self.cfg.data.template, out_dir=self.run_dir / "eval" / f"step_{self.step:06d}",
                               tokenizer=self.tokenizer)
        # Full-chain and strict grading side by side: eval/pass@1, eval/strict/pass@1, eval/no_answer, ...
        out = {f"eval/{name}": value for name, value in flat_metrics(summary).items()}
        out["eval/truncated"] = summary["finish_reasons"].get("length", 0) / max(1, summary["num_samples"])
        if summary.get("mean_tokens") is not None:
            out["eval/mean_tokens"] = float(summary["mean_tokens"])
        return out

    def save(self) -> None:
        with self.timers("checkpoint"):
            self.checkpoints.save_engine(self.step, self.train_engine, self.tokenizer,
                                         {"sampler": self.sampler.state_dict(), "carried": self.carried,
                                          "entropy_control": self.entropy_control.state_dict(),
                                          "pass_rates": self.pass_rates.state_dict()}, self.extra_engines)

    def _resume(self) -> dict[str, Any] | None:
        """Continue from the checkpoint ``cfg.resume`` names; its trainer state, or None."""
        state = self.checkpoints.resume(self.cfg.resume, self.train_engine, self.run_dir / "metrics.jsonl", self.extra_engines)
        if state is not None:
            self.step = int(state["step"])
            self.sampler.load_state_dict(state["sampler"])
            self.carried = state["carried"]
            self.entropy_control.load_state_dict(state.get("entropy_control"))
            if "pass_rates" in state:
                self.pass_rates.load_state_dict(state["pass_rates"])
            with self.train_engine.full_weights():
                self.engine.load_state_from(self.model)
        return state

    def _fitting_prompts(self, examples: list, source: str) -> tuple[list, list[str]]:
        """Examples and their rendered prompts, those over model.max_prompt_tokens handled by data.on_overlong."""
        from rl_reason.data_pipelines import render_prompt
        from rl_reason.trainers.common.encoding import drop_overlong_prompts

        prompts = [render_prompt(ex, self.cfg.data.template, tokenizer=self.tokenizer) for ex in examples]
        return drop_overlong_prompts(examples, prompts, self.tokenizer, self.cfg.model.max_prompt_tokens,
                                     self.cfg.data.on_overlong, source)

    def _write_samples(self, groups: list[Group]) -> None:
        with JsonlAppender(self.run_dir / "samples.jsonl", fsync=False) as out:
            for g in groups:
                for c, s, r in zip(g.completions, g.scored, g.rewards):
                    out.write({"step": self.step, "prompt": self.prompts[g.example_index], "response": c.text,
                               "reward": r, "status": s.status, "finish_reason": c.finish_reason})


# ---------------------------------------------------------------- helpers
def group_signal(groups: list[Group], eps: float) -> SignalStats:
    """The learning signal of scored groups (``rl_reason.trainers.signal``); unscorable samples left out."""
    return signal_stats([GroupOutcome([g.rewards[i] for i in g.kept], [g.scored[i].status for i in g.kept],
                                      [g.completions[i].finish_reason for i in g.kept]) for g in groups], eps)


def probe(cfg: GRPOConfig, num_prompts: int) -> list[str]:
    """``rl-reason train --validate --probe N``: the diagnosis of N sampled prompts before training
    (the same words as the trainer's warning). The trainer's run folder goes to a temporary one."""
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trainer = GRPOTrainer(dataclasses.replace(cfg, output_dir=tmp))
        try:
            stats = trainer.probe(num_prompts)
        finally:
            close = getattr(trainer.reward_fn, "close", None)
            if close is not None:
                close()
    what = (f"probe: {num_prompts} prompts x {cfg.rollout.n} samples of {cfg.data.train} "
            f"(temperature {cfg.rollout.temperature}, max_new_tokens {cfg.rollout.max_new_tokens})")
    rate = f"expected signal rate: {100 * stats.signal_frac:.0f}% of groups ({stats.groups_with_signal} of {stats.groups})"
    return [what, rate, *diagnose(stats, cfg.rollout.max_new_tokens, cfg.rollout.n)]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_policy(cfg: GRPOConfig):
    """The policy (with LoRA adapters when ``model.lora.r`` > 0) and its tokenizer."""
    from rl_reason.models import apply_lora, base_policy, disable_dropout

    model, tokenizer = base_policy(cfg.model, cfg.seed)
    # No dropout in RL: old and new log-probs must come from the same deterministic function.
    model.eval()
    if cfg.train.gradient_checkpointing:
        # transformers checkpoints layers only in training mode: train there, with dropout zeroed.
        disable_dropout(model)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    return apply_lora(model, cfg.model.lora), tokenizer


def _share_per_rank(cfg: GRPOConfig, world: int) -> int:
    """Prompts each data-parallel rank rolls out per step; the step's batch is split evenly."""
    per_rank, rest = divmod(cfg.train.prompts_per_step, world)
    seqs = per_rank * cfg.rollout.n
    if rest or seqs % cfg.train.mini_batches or (seqs // cfg.train.mini_batches) % cfg.train.micro_batch_size:
        raise ValueError(
            f"train.prompts_per_step={cfg.train.prompts_per_step} over {world} ranks must give each rank whole "
            f"mini-batches ({cfg.train.mini_batches}) of whole micro-batches ({cfg.train.micro_batch_size} sequences)")
    return per_rank


def _micro_batches_per_update(cfg: GRPOConfig, prompts_per_rank: int) -> int:
    return prompts_per_rank * cfg.rollout.n // cfg.train.mini_batches // cfg.train.micro_batch_size


def _build_train_engine(model, cfg: GRPOConfig, prompts_per_rank: int):
    """The optimizer step's engine (torch or DeepSpeed ZeRO) with AdamW and the LR schedule."""
    t = cfg.train
    return build_train_engine(
        model, cfg.distributed,
        optimizer_fn=lambda params: torch.optim.AdamW([p for p in params if p.requires_grad], lr=t.lr, betas=tuple(t.betas),
                                                      weight_decay=t.weight_decay),
        scheduler_fn=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_factor(t.steps * t.ppo_epochs * t.mini_batches, t.warmup_steps, t.lr_schedule)),
        micro_batch_size=t.micro_batch_size, grad_accum_steps=_micro_batches_per_update(cfg, prompts_per_rank),
        max_grad_norm=t.max_grad_norm, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay, dtype=cfg.model.dtype)


def train(cfg: GRPOConfig) -> Path:
    """Run (or resume) a GRPO job; returns the run folder."""
    GRPOTrainer(cfg).train()
    return Path(cfg.output_dir)

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
The steps run in the shared loop (``trainers.common.loop``), each phase in a named timer. With
several ranks, a rank whose groups were all dropped trains on ``Batch.placeholder()`` and joins
every collective (``trainers.common.lockstep``).
Departures from vanilla GRPO are config switches: clip-higher (``clip_high``), token-mean
aggregation, overlong filtering and punishment, dynamic sampling, KL weight 0 by default (no
reference model is loaded then).
"""

from __future__ import annotations

import dataclasses
import random
import sys
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
    distill_advantages,
    filter_groups_by_std,
    kl_penalty,
    logprob_mismatch_metrics,
    overlong_filter_mask,
    soft_overlong_penalty,
    step_normalisers,
    truncated_is_weights,
)
from rl_reason.distributed import setup as dist
from rl_reason.io import JsonlAppender
from rl_reason.models.lora import adapter_disabled, is_lora
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.common.engine import adamw_engine
from rl_reason.trainers.common.lockstep import lockstep_chunks, lockstep_forward, step_token_count
from rl_reason.trainers.common.loop import LoopSchedule, run_loop
from rl_reason.trainers.common.sampler import PassRateTable
from rl_reason.trainers.common.seeding import seed_everything
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

    @classmethod
    def placeholder(cls, pad_id: int, device: torch.device | str) -> Batch:
        """One row of padding with no loss token, for a rank whose step kept no group: it still
        runs every forward and weight-0 backward the other ranks run (``common.lockstep``)."""
        ids = torch.full((1, 2), pad_id, dtype=torch.long, device=device)
        return cls(ids, torch.ones_like(ids), torch.zeros(1, 1, device=device), None, torch.zeros(1, device=device),
                   torch.zeros(1, dtype=torch.long, device=device))


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
    def __init__(self, cfg: GRPOConfig, reward_fn: RewardFn | None = None, init_from: str | Path | None = None) -> None:
        from rl_reason.data_pipelines import load_dataset
        from rl_reason.rollout import get_engine

        self.cfg = cfg
        self.dist = dist.init_distributed(cfg.distributed.backend, cfg.distributed.timeout_s, cfg.model.device)
        self.prompts_per_rank = _share_per_rank(cfg, self.dist.world_size)
        self.run_dir = Path(cfg.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        data_dir, fields = cfg.data.data_dir or None, cfg.data.fields or None
        self.train_examples = load_dataset(cfg.data.train, data_dir=data_dir, field_map=fields, limit=cfg.data.train_limit or None)
        self.eval_examples = (
            load_dataset(cfg.data.eval, data_dir=data_dir, field_map=fields, limit=cfg.data.eval_limit or None)
            if cfg.data.eval else []
        )
        # init_from: the warm-started weights, when a warm-start stage ran (cfg.model.name stays the run's identity)
        self.model, self.tokenizer = _load_policy(cfg, init_from)
        self.train_examples, self.prompts = self._fitting_prompts(self.train_examples, cfg.data.train)
        self.eval_examples, _ = self._fitting_prompts(self.eval_examples, cfg.data.eval)
        self.ref_model = None
        if cfg.algorithm.kl_coef > 0:
            # With LoRA the reference is the policy with its adapter off (adapter_disabled): no copy.
            self.ref_model = self.model if is_lora(self.model) else _load_policy(cfg, init_from)[0].requires_grad_(False)
        self.teacher = _load_teacher(cfg, self.tokenizer) if cfg.distill.teacher else None
        self.distill_metrics: dict[str, float] = {}
        if cfg.rollout.engine == "vllm":  # its own copy of the weights, refreshed by load_state_from
            self.engine = get_engine("vllm", model=str(init_from or cfg.model.name), tokenizer=self.tokenizer, dtype=cfg.model.dtype,
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
        self.reward_fn = reward_fn or VerifierReward.from_config(cfg.reward)
        if cfg.reward.prm.path:  # a learned process reward, mixed into the verifier's
            from rl_reason.trainers.prm import ProcessReward

            self.reward_fn = ProcessReward(self.reward_fn, cfg)
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.timers = PhaseTimers()
        self.signal_monitor = SignalMonitor(cfg.signal.warn_after, cfg.signal.min_groups_with_variance)
        self.step = 0

    # ----------------------------------------------------------------- the loop
    def train(self, budget_used_s: float = 0.0) -> None:
        """``budget_used_s``: seconds of ``train.time_budget_min`` spent before this loop (the warm start)."""
        cfg = self.cfg
        run_loop(self, self.run_dir, cfg, LoopSchedule(
            cfg.trainer, cfg.train.steps, cfg.eval.every, cfg.checkpoint.every, cfg.train.time_budget_min,
            {"reward": "reward/mean", "acc": "reward/accuracy", "signal": "signal/groups_with_variance"},
            budget_used_s), cfg.log.progress)

    def train_step(self) -> dict[str, float]:
        batch, stats = self.rollout_batch()
        with self.timers("old_logprobs"):
            old_logprobs, ref_logprobs = self.reference_logprobs(batch)
        stats.update(self.mismatch_metrics(batch, old_logprobs))
        with self.timers("advantages"):
            advantages = self.advantages(batch)
        stats.update(self.distill_metrics)
        with self.timers("update"):
            stats.update(self.update_policy(batch, old_logprobs, ref_logprobs, advantages))
        self.sync_weights()
        return stats

    def rollout_batch(self) -> tuple[Batch, dict[str, float]]:
        """The step's groups (rollout, reward, dynamic sampling) as tensors, and their metrics."""
        with self.timers("rollout_and_reward"):
            groups, stats = self.collect_groups()
        warning = self.signal_monitor.update(self.signal, self.cfg.rollout.max_new_tokens, self.cfg.rollout.n)
        if warning and dist.is_main():
            from tqdm.auto import tqdm

            tqdm.write(warning, file=sys.stderr)
        batch = self.build_batch(groups)
        stats["perf/tokens"] = float(batch.attention_mask.sum()) if groups else 0.0
        return batch, stats

    def sync_weights(self) -> None:
        with self.timers("sync_weights"), self.train_engine.full_weights():
            self.engine.load_state_from(self.model)

    def after_step(self, stats: dict[str, float]) -> dict[str, float]:
        return self.entropy_control.after_step(stats.get("actor/entropy"))

    def close(self) -> None:
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
            return Batch.placeholder(pad, self.cfg.model.device)
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
        # Packed shared prompts need no key/value cache, which activation checkpointing drops.
        sharing = t.share_prompt_forward and (t.pack_tokens > 0 or not t.gradient_checkpointing)
        shared = batch.group_ids[index] if sharing else None
        # The same number of head projections on every rank, whatever its token count (ZeRO-3).
        head_chunks = -(-t.micro_batch_size * self.cfg.rollout.max_new_tokens // 1024)
        return token_logprobs(model, rows["input_ids"], rows["attention_mask"], response_length=batch.response_length,
                              temperature=self.cfg.rollout.temperature, with_entropy=with_entropy, prompt_index=shared,
                              num_chunks=head_chunks, pack_tokens=t.pack_tokens)

    @torch.no_grad()
    def reference_logprobs(self, batch: Batch, need_old: bool = False) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Old log-probs from the trainer (None when the update is a single on-policy pass and
        not ``need_old``: then the update's own forward gives them, detached, saving one forward)
        and reference log-probs when the KL weight is non-zero. None, None when no rank has a
        loss token."""
        if not step_token_count(batch.response_mask, self.dist.device):
            return None, None
        on_policy = self.cfg.train.ppo_epochs * self.cfg.train.mini_batches == 1 and not need_old
        old = None if on_policy else self.lockstep_forward(lambda ix: self.logprobs(self.model, batch, ix)[0], batch)
        ref = None
        if self.ref_model is not None:
            # A frozen reference copy is never sharded (no rank waits on its forwards); a LoRA
            # reference is the trained policy itself, read with its adapter off.
            with adapter_disabled(self.ref_model):
                ref = self.lockstep_forward(lambda ix: self.logprobs(self.ref_model, batch, ix)[0], batch,
                                            padded=is_lora(self.ref_model))
        return old, ref

    def lockstep_forward(self, forward, batch: Batch, padded: bool = True) -> torch.Tensor:
        """``forward(rows)`` over the batch in micro-batches, as many on every rank as a full share
        has (``common.lockstep``): the trained models may be ZeRO-3-sharded."""
        micro = self.cfg.train.micro_batch_size
        count = self.prompts_per_rank * self.cfg.rollout.n // micro if padded else None
        return lockstep_forward(forward, batch.input_ids.shape[0], micro, count, batch.input_ids.device)

    @staticmethod
    def mismatch_metrics(batch: Batch, trainer_logprobs: torch.Tensor | None) -> dict[str, float]:
        """Rollout-vs-trainer log-prob mismatch (KL, ratio tail); on-policy steps compute it
        from the update's own forward instead (``trainer_logprobs`` is None here then)."""
        if trainer_logprobs is None or batch.rollout_logprobs is None or not batch.response_mask.any():
            return {}
        metrics = logprob_mismatch_metrics(trainer_logprobs, batch.rollout_logprobs, batch.response_mask)
        return {f"mismatch/{k.removeprefix('mismatch_')}": float(v) for k, v in metrics.items()}

    def advantages(self, batch: Batch) -> torch.Tensor:
        # Group baselines come from every kept row's score, overlong-filtered ones too; batch
        # whitening (reinforce_pp) runs over the loss tokens only.
        adv, _ = ADVANTAGES.get(self.cfg.algorithm.advantage)(
            response_mask=batch.response_mask, scores=batch.scores, group_ids=batch.group_ids,
            norm_by_std=self.cfg.algorithm.scale_by_std, eps=self.cfg.dapo.std_eps)
        if self.teacher is not None:
            adv = adv + self.distill_advantages(batch) * batch.response_mask
        return adv

    @torch.no_grad()
    def distill_advantages(self, batch: Batch) -> torch.Tensor:
        """On-policy distillation: per-token ``-coef * (log p_policy - log p_teacher)`` on the
        sampled tokens (``algorithms.distill_advantages``), both at the rollout temperature."""
        student = self.lockstep_forward(lambda ix: self.logprobs(self.model, batch, ix)[0], batch)
        teacher = self.lockstep_forward(lambda ix: self.logprobs(self.teacher, batch, ix)[0], batch, padded=False)
        mask = batch.response_mask
        gap = ((student - teacher) * mask).sum() / mask.sum().clamp(min=1)
        self.distill_metrics = {"distill/reverse_kl": float(gap)}
        return distill_advantages(student, teacher, mask, self.cfg.distill.coef)

    # ------------------------------------------------------------ update
    def update_policy(self, batch: Batch, old_logprobs, ref_logprobs, advantages) -> dict[str, float]:
        cfg, alg = self.cfg, self.cfg.algorithm
        if not step_token_count(batch.response_mask, self.dist.device):  # the same on every rank
            return {"actor/skipped_update": 1.0, "actor/lr": self.train_engine.lr}
        policy_loss = POLICY_LOSSES.get(alg.policy_loss)
        loss_kwargs = policy_loss_kwargs(cfg, step_seed(cfg.seed, self.step, 15485863))
        entropy_coef = self.entropy_control.coef
        gen = torch.Generator().manual_seed(step_seed(cfg.seed, self.step, 7919))
        sums: Counter[str] = Counter({"actor/loss": 0.0})  # a rank without rows adds 0 to the ranks' mean
        updates = 0
        # On-policy (one update per batch): the update's forward is also the "old" policy.
        on_policy_logprobs = torch.zeros_like(batch.response_mask) if old_logprobs is None else None
        for _ in range(cfg.train.ppo_epochs):
            order = grouped_permutation(batch.group_ids, gen)
            for mini in order.tensor_split(cfg.train.mini_batches):
                self.train_engine.zero_grad()
                # A short share repeats a micro-batch with weight 0: every rank runs the configured
                # number of backward passes, which gradient reduction and DeepSpeed's accumulation
                # boundary count on (common.lockstep). Normalisers are the step's over all ranks.
                micros, n_local = lockstep_chunks(mini, cfg.train.micro_batch_size,
                                                  _micro_batches_per_update(cfg, self.prompts_per_rank))
                norm = dist.global_normalisers(step_normalisers(batch.response_mask[m] for m in micros[:n_local]),
                                               self.dist.device)
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
                    kl = None if ref_logprobs is None else kl_penalty(logp, ref_logprobs[micro], kind=alg.kl_kind)
                    if kl is not None:
                        loss_mat = loss_mat + alg.kl_coef * kl
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
                    if kl is not None:
                        sums["actor/kl"] += float((kl.detach() * mask).sum())
                    for k, v in loss_stats.items():
                        sums[f"actor/{k}"] += float(v) * n_tokens
                    sums["tokens"] += n_tokens
                sums["actor/grad_norm"] += self.train_engine.step()
                updates += 1
        tokens = sums.pop("tokens")
        # Loss and grad norm average over optimizer updates, the rest over this rank's tokens (none
        # on a rank that kept no group: it reports no token average).
        per_update = ("actor/loss", "actor/grad_norm")
        out = {k: v / (updates if k in per_update else tokens) for k, v in sums.items() if k in per_update or tokens}
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
        self.checkpoints.save_engine(self.step, self.train_engine, self.tokenizer,
                                     {"sampler": self.sampler.state_dict(), "carried": self.carried,
                                      "entropy_control": self.entropy_control.state_dict(),
                                      "pass_rates": self.pass_rates.state_dict()}, self.extra_engines)

    def resume(self) -> dict[str, Any] | None:
        """Continue from the checkpoint ``cfg.resume`` names; its trainer state, or None."""
        state = self.checkpoints.resume(self.cfg.resume, self.train_engine, self.run_dir, self.extra_engines)
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
            trainer.close()
    what = (f"probe: {num_prompts} prompts x {cfg.rollout.n} samples of {cfg.data.train} "
            f"(temperature {cfg.rollout.temperature}, max_new_tokens {cfg.rollout.max_new_tokens})")
    rate = f"expected signal rate: {100 * stats.signal_frac:.0f}% of groups ({stats.groups_with_signal} of {stats.groups})"
    return [what, rate, *diagnose(stats, cfg.rollout.max_new_tokens, cfg.rollout.n)]


def _load_policy(cfg: GRPOConfig, init_from: str | Path | None = None):
    """The policy (with LoRA adapters when ``model.lora.r`` > 0) and its tokenizer; ``init_from``:
    the warm-started weights to start from instead of ``model.name``."""
    from rl_reason.models import apply_lora, base_policy, disable_dropout

    model_cfg = cfg.model if init_from is None else dataclasses.replace(cfg.model, name=str(init_from))
    model, tokenizer = base_policy(model_cfg, cfg.seed)
    # No dropout in RL: old and new log-probs must come from the same deterministic function.
    model.eval()
    if cfg.train.gradient_checkpointing:
        # transformers checkpoints layers only in training mode: train there, with dropout zeroed.
        disable_dropout(model)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    return apply_lora(model, cfg.model.lora), tokenizer


def _load_teacher(cfg: GRPOConfig, tokenizer):
    """The frozen distillation teacher; it must share the policy's tokenizer, since it scores the
    policy's token ids."""
    from rl_reason.models import load_model

    teacher, teacher_tok = load_model(cfg.distill.teacher, dtype=cfg.model.dtype, device=cfg.model.device)
    if teacher_tok.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"distill.teacher {cfg.distill.teacher}: its tokenizer differs from the policy's "
                         f"({cfg.model.name}); on-policy distillation scores the policy's token ids with the teacher")
    return teacher.requires_grad_(False).eval()


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
    """The policy's optimizer engine (torch or DeepSpeed ZeRO) with AdamW and the LR schedule."""
    t = cfg.train
    return adamw_engine(model, cfg.distributed, t, total_updates=t.steps * t.ppo_epochs * t.mini_batches,
                        micro_batch_size=t.micro_batch_size, grad_accum_steps=_micro_batches_per_update(cfg, prompts_per_rank),
                        dtype=cfg.model.dtype)


def train(cfg: GRPOConfig) -> Path:
    """Run (or resume) a GRPO job, after its warm-start stage if configured; returns the run folder."""
    from rl_reason.trainers.warm_start import run_warm_start

    init_from, warm_start_s = run_warm_start(cfg)
    GRPOTrainer(cfg, init_from=init_from).train(budget_used_s=warm_start_s)
    return Path(cfg.output_dir)

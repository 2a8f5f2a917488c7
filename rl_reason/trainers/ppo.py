"""PPO with a critic and a learned reward model, composed of three parts:

  - the actor: a ``GRPOTrainer`` (rollout, dynamic sampling, batching, the clipped policy
    update, checkpoints, eval), fed by
  - the reward source ``MixedReward``: ``reward_model.weight * RM(prompt, response) +
    reward_model.verifier_weight * verifier`` (both logged, and their correlation), and
  - the ``Critic``: a scalar head (from the reward model or the actor's backbone) trained with
    the clipped value loss (``algorithms.clipped_value_loss``), token-mean over the step's tokens
    on all ranks.
Per step: rollout and reward -> old log-probs, reference log-probs and values -> the k1 KL
penalty ``-kl_coef * (log pi - log pi_ref)`` in every token's reward (``gae.kl_in_reward``; else
a loss term as in GRPO) -> GAE advantages, whitened -> critic and actor updates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rl_reason.algorithms import step_normalisers
from rl_reason.distributed import setup as dist
from rl_reason.trainers.common.engine import adamw_engine
from rl_reason.trainers.common.lockstep import lockstep_chunks, step_token_count
from rl_reason.trainers.common.loop import LoopSchedule, run_loop
from rl_reason.trainers.grpo import Batch, GRPOTrainer, _micro_batches_per_update, step_seed
from rl_reason.trainers.grpo_config import AdamWConfig
from rl_reason.trainers.post_config import PPOConfig
from rl_reason.trainers.rewards import Scored, VerifierReward


@dataclass
class MixedScored(Scored):
    rm_score: float = float("nan")
    verifier_score: float = float("nan")


class MixedReward:
    """``rm_weight * RM + verifier_weight * verifier`` per response; the verifier always runs
    (math is cheap) so its score can be logged next to the RM's."""

    def __init__(self, cfg: PPOConfig):
        from rl_reason.models.heads import load_scalar_model

        self.verifier = VerifierReward.from_config(cfg.reward)
        self.rm_weight, self.verifier_weight = cfg.reward_model.weight, cfg.reward_model.verifier_weight
        self.rm = None
        if cfg.reward_model.path:
            self.rm, self.rm_tokenizer = load_scalar_model(cfg.reward_model.path, dtype=cfg.model.dtype, device=cfg.model.device)
            self.rm.requires_grad_(False)
        self.max_prompt_tokens = cfg.model.max_prompt_tokens
        self.max_response_tokens = cfg.rollout.max_new_tokens
        self.render = None  # example -> prompt text; set by the trainer once its tokenizer is loaded
        self.scored: list[MixedScored] = []  # since the last pop_metrics()

    def __call__(self, examples, responses) -> list[MixedScored]:
        from rl_reason.trainers.reward_model import score_texts

        verified = self.verifier(examples, responses)
        rm = [0.0] * len(responses)
        if self.rm is not None:
            prompts = [self.render(ex) for ex in examples]
            rm = score_texts(self.rm, self.rm_tokenizer, prompts, responses, self.max_prompt_tokens,
                             self.max_response_tokens).tolist()
        out = []
        for v, s in zip(verified, rm):
            valid = v.valid or not self.verifier_weight  # a verifier timeout only matters when it is weighted
            out.append(MixedScored(self.rm_weight * s + self.verifier_weight * v.reward, v.status, v.correct, valid,
                                   rm_score=s if self.rm is not None else float("nan"), verifier_score=v.reward))
        self.scored.extend(out)
        return out

    def pop_metrics(self) -> dict[str, float]:
        """The RM's and the verifier's scores of the responses scored since the last call (every
        group drawn in a step, before dynamic sampling), and their correlation."""
        rm = np.array([s.rm_score for s in self.scored], dtype=float)
        ver = np.array([s.verifier_score for s in self.scored], dtype=float)
        self.scored = []
        out = {}
        if len(rm) and np.isfinite(rm).all():
            out["rm/score_mean"] = float(rm.mean())
            out["rm/score_std"] = float(rm.std())
            if rm.std() > 0 and ver.std() > 0:
                out["rm/verifier_corr"] = float(np.corrcoef(rm, ver)[0, 1])
        if len(ver):
            out["verifier/score_mean"] = float(ver.mean())
        return out

    def close(self) -> None:
        self.verifier.close()


class Critic:
    """The value model and its clipped value-loss update.

    The loss of each update is the token mean over the mini-batch's tokens on all ranks (their
    count all-reduced), so N ranks take the one-process step; a rank with fewer rows runs
    weight-0 micro-batches to keep the engine's collectives in step (``common.lockstep``).
    """

    def __init__(self, cfg: PPOConfig, actor: GRPOTrainer) -> None:
        from rl_reason.models.heads import load_scalar_model, scalar_model_from_lm
        from rl_reason.models.lora import apply_lora

        self.cfg = cfg
        init = cfg.critic.init
        if init == "actor":
            module = scalar_model_from_lm(actor.model)
        else:
            module, _ = load_scalar_model(cfg.reward_model.path if init == "reward_model" else init,
                                          dtype=cfg.model.dtype, device=cfg.model.device)
        module.eval()  # no dropout: values at rollout time and in the update are the same function
        module = apply_lora(module, cfg.model.lora, task="seq_cls")  # adapters and the score head train
        t = cfg.train
        self.micro_batches = _micro_batches_per_update(cfg, actor.prompts_per_rank)
        # AdamW's default weight decay (0.01), a constant LR and the actor's clipping.
        optim = AdamWConfig(lr=cfg.critic.lr, weight_decay=0.01, max_grad_norm=t.max_grad_norm)
        self.engine = adamw_engine(module, cfg.distributed, optim, total_updates=t.steps * t.ppo_epochs * t.mini_batches,
                                   micro_batch_size=t.micro_batch_size, grad_accum_steps=self.micro_batches,
                                   dtype=cfg.model.dtype)
        self.module = self.engine.module
        self.device = actor.dist.device

    def values_of(self, batch: Batch, index: torch.Tensor) -> torch.Tensor:
        from rl_reason.models.heads import token_values

        return token_values(self.module, batch.input_ids[index], batch.attention_mask[index], batch.response_length)

    def update(self, batch: Batch, old_values: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        from rl_reason.algorithms import aggregate_loss, clipped_value_loss

        cfg = self.cfg
        if not step_token_count(batch.response_mask, self.device):  # the same on every rank
            return {}
        clip = cfg.critic.value_clip or None
        gen = torch.Generator().manual_seed(step_seed(cfg.seed, step, 104729))
        sums: Counter[str] = Counter({"critic/value_loss": 0.0})  # a rank without rows adds 0 to the mean
        updates = 0
        for _ in range(cfg.train.ppo_epochs):
            order = torch.randperm(batch.input_ids.shape[0], generator=gen).to(batch.input_ids.device)
            for mini in order.tensor_split(cfg.train.mini_batches):
                self.engine.zero_grad()
                micros, n_local = lockstep_chunks(mini, cfg.train.micro_batch_size, self.micro_batches)
                norm = dist.global_normalisers(step_normalisers(batch.response_mask[m] for m in micros[:n_local]),
                                               self.device)
                for j, micro in enumerate(micros):
                    mask = batch.response_mask[micro]
                    loss_mat, m = clipped_value_loss(values=self.values_of(batch, micro), old_values=old_values[micro],
                                                     returns=returns[micro], response_mask=mask, clip_range=clip)
                    loss = aggregate_loss(loss_mat, mask, "token-mean", global_num_tokens=norm.num_tokens,
                                          dp_size=dist.world_size())
                    if j >= n_local:
                        self.engine.backward(loss * 0.0)
                        continue
                    self.engine.backward(loss)
                    sums["critic/value_loss"] += float(loss.detach())
                    sums["critic/value_clip_frac"] += float(m["value_clip_frac"]) * float(mask.sum())
                    sums["tokens"] += float(mask.sum())
                sums["critic/grad_norm"] += self.engine.step()
                updates += 1
        tokens = sums.pop("tokens")
        out = {k: v / updates for k, v in sums.items() if k != "critic/value_clip_frac"}
        if tokens:
            out["critic/value_clip_frac"] = sums["critic/value_clip_frac"] / tokens
        return out


class PPOTrainer:
    """The step loop's phases over the actor, the critic and the reward source."""

    def __init__(self, cfg: PPOConfig, init_from: str | Path | None = None) -> None:
        from functools import partial

        from rl_reason.data_pipelines import render_prompt

        self.cfg = cfg
        self.reward = MixedReward(cfg)
        self.actor = GRPOTrainer(cfg, reward_fn=self.reward, init_from=init_from)  # init_from: a warm start's weights
        self.reward.render = partial(render_prompt, template=cfg.data.template, tokenizer=self.actor.tokenizer)
        self.critic = Critic(cfg, self.actor)
        self.actor.extra_engines["critic"] = self.critic.engine  # checkpointed and resumed with the policy
        self.timers = self.actor.timers

    @property
    def step(self) -> int:
        return self.actor.step

    @step.setter
    def step(self, value: int) -> None:
        self.actor.step = value

    def train(self, budget_used_s: float = 0.0) -> None:
        """``budget_used_s``: seconds of ``train.time_budget_min`` spent before this loop (the warm start)."""
        cfg = self.cfg
        run_loop(self, self.actor.run_dir, cfg, LoopSchedule(
            cfg.trainer, cfg.train.steps, cfg.eval.every, cfg.checkpoint.every, cfg.train.time_budget_min,
            {"reward": "reward/mean", "value_loss": "critic/value_loss"}, budget_used_s), cfg.log.progress)

    def train_step(self) -> dict[str, float]:
        actor = self.actor
        batch, stats = actor.rollout_batch()
        stats.update(self.reward.pop_metrics())
        with self.timers("old_logprobs"):
            old_logprobs, ref_logprobs = actor.reference_logprobs(batch, need_old=True)  # the KL reward needs both
            old_values = actor.lockstep_forward(lambda ix: self.critic.values_of(batch, ix), batch)
        stats.update(actor.mismatch_metrics(batch, old_logprobs))
        with self.timers("advantages"):
            advantages, returns, adv_stats = self.advantages(batch, old_logprobs, ref_logprobs, old_values)
        stats.update(adv_stats)
        with self.timers("update"):
            stats.update(self.critic.update(batch, old_values, returns, self.step))
            kl_loss_ref = None if self.cfg.gae.kl_in_reward else ref_logprobs
            stats.update(actor.update_policy(batch, old_logprobs, kl_loss_ref, advantages))
        actor.sync_weights()
        return stats

    def advantages(self, batch: Batch, old_logprobs, ref_logprobs, values) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """GAE over the critic's values of the score on each row's last token (minus the k1 KL
        penalty per token with ``gae.kl_in_reward``): advantages, returns and their metrics."""
        from rl_reason.algorithms import ADVANTAGES, explained_variance, kl_penalised_rewards, masked_mean

        mask = batch.response_mask
        stats = {}
        rewards = torch.zeros_like(mask)
        lengths = mask.sum(-1).long()
        rewards[torch.arange(mask.shape[0]), (lengths - 1).clamp(min=0)] = batch.scores.float() * (lengths > 0)
        if ref_logprobs is not None and self.cfg.gae.kl_in_reward:
            rewards, kl = kl_penalised_rewards(rewards, old_logprobs, ref_logprobs, mask,
                                               beta=self.cfg.algorithm.kl_coef, kind="k1")
            stats["ppo/kl_in_reward"] = float(kl.sum() / mask.sum().clamp(min=1))
        g = self.cfg.gae
        adv, returns = ADVANTAGES.get("gae")(response_mask=mask, token_rewards=rewards, values=values,
                                             gamma=g.gamma, lam=g.lam, norm_by_std=g.whiten_advantages)
        if mask.any():
            stats.update({"critic/returns_mean": float(masked_mean(returns, mask)),
                          "critic/values_mean": float(masked_mean(values, mask)),
                          "critic/explained_variance": float(explained_variance(values, returns, mask)),
                          "ppo/advantages_mean": float(masked_mean(adv, mask))})
        return adv, returns, stats

    # The actor's run: evaluation, checkpoints (the critic's engine with them), resume.
    def evaluate(self) -> dict[str, float]:
        return self.actor.evaluate()

    def after_step(self, stats: dict[str, float]) -> dict[str, float]:
        return self.actor.after_step(stats)

    def save(self) -> None:
        self.actor.save()

    def resume(self) -> None:
        self.actor.resume()

    def close(self) -> None:
        self.actor.close()


def train(cfg: PPOConfig) -> Path:
    """Run (or resume) a PPO job, after its warm-start stage if configured; returns the run folder."""
    from rl_reason.trainers.warm_start import run_warm_start

    init_from, warm_start_s = run_warm_start(cfg)
    PPOTrainer(cfg, init_from).train(budget_used_s=warm_start_s)
    return Path(cfg.output_dir)

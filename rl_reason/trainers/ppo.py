"""PPO with a critic and a learned reward model, on the GRPO trainer's machinery.

Four models: the actor (trained), the critic (a scalar head, from the reward model or the
actor's backbone; trained, shares nothing with the actor), the reference (frozen, loaded when
``algorithm.kl_coef > 0``) and the reward model (frozen). Per step, as a diff from GRPO:
  - reward: ``reward_model.weight * RM(prompt, response) + reward_model.verifier_weight *
    verifier`` (both logged, and their correlation);
  - the k1 KL penalty ``-kl_coef * (log pi - log pi_ref)`` is added to every token's reward
    (``gae.kl_in_reward``; else it is a loss term as in GRPO);
  - advantages by GAE over the critic's values (``algorithms.ADVANTAGES['gae']``), whitened;
  - ``ppo_epochs`` x mini-batches of the clipped policy loss (GRPO's ``update_policy``) and of
    the clipped value loss (``algorithms.clipped_value_loss``) on the critic.
Rollout, verifier scoring, batching, checkpoints, metrics and eval are GRPO's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rl_reason.distributed.engine import build_train_engine
from rl_reason.models.lora import adapter_disabled, apply_lora
from rl_reason.trainers.grpo import Batch, GRPOTrainer, _micro_batches_per_update, step_seed
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

        r = cfg.reward
        self.verifier = VerifierReward(r.math_weight, r.code_weight, r.format_weight, r.format_pattern,
                                       r.verifier_timeout, r.verifier_workers, r.sandbox, r.answer_format)
        self.rm_weight, self.verifier_weight = cfg.reward_model.weight, cfg.reward_model.verifier_weight
        self.rm = None
        if cfg.reward_model.path:
            self.rm, self.rm_tokenizer = load_scalar_model(cfg.reward_model.path, dtype=cfg.model.dtype, device=cfg.model.device)
            self.rm.requires_grad_(False)
        self.max_prompt_tokens = cfg.model.max_prompt_tokens
        self.max_response_tokens = cfg.rollout.max_new_tokens
        self.render = None  # example -> prompt text; set by the trainer once its tokenizer is loaded

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
        return out

    def close(self) -> None:
        self.verifier.close()


class PPOTrainer(GRPOTrainer):
    def __init__(self, cfg: PPOConfig) -> None:
        from functools import partial

        from rl_reason.data_pipelines import render_prompt
        from rl_reason.models.heads import load_scalar_model, scalar_model_from_lm

        reward = MixedReward(cfg)
        super().__init__(cfg, reward_fn=reward)
        reward.render = partial(render_prompt, template=cfg.data.template, tokenizer=self.tokenizer)
        init = cfg.critic.init
        if init == "actor":
            self.critic = scalar_model_from_lm(self.model)
        else:
            self.critic, _ = load_scalar_model(cfg.reward_model.path if init == "reward_model" else init,
                                               dtype=cfg.model.dtype, device=cfg.model.device)
        self.critic.eval()  # no dropout: values at rollout time and in the update are the same function
        self.critic = apply_lora(self.critic, cfg.model.lora, task="seq_cls")
        t = cfg.train
        # AdamW's default weight decay (0.01) and no LR schedule, as the critic always had.
        self.critic_engine = build_train_engine(
            self.critic, cfg.distributed, optimizer_fn=lambda params: torch.optim.AdamW([p for p in params if p.requires_grad], lr=cfg.critic.lr),
            scheduler_fn=None, micro_batch_size=t.micro_batch_size,
            grad_accum_steps=_micro_batches_per_update(cfg, self.prompts_per_rank), max_grad_norm=t.max_grad_norm,
            lr=cfg.critic.lr, betas=(0.9, 0.999), weight_decay=0.01, dtype=cfg.model.dtype)
        self.critic = self.critic_engine.module
        self.extra_engines["critic"] = self.critic_engine
        self.old_values = self.returns = self.kl_ref = None

    # ------------------------------------------------------------ values, KL, GAE
    @torch.no_grad()
    def reference_logprobs(self, batch: Batch):
        """Old log-probs (always: the KL reward needs them), reference log-probs, old values."""
        from rl_reason.models.heads import token_values

        B = batch.input_ids.shape[0]
        if B == 0:
            return None, None
        chunks, real = self.forward_chunks(B)  # actor and critic may be ZeRO-3: every rank runs as many forwards
        old = torch.cat([self.logprobs(self.model, batch, ix)[0] for ix in chunks][:real])
        with adapter_disabled(self.ref_model):
            ref = torch.cat([self.logprobs(self.ref_model, batch, ix)[0] for ix in chunks[:real]]) if self.ref_model is not None else None
        self.old_values = torch.cat([token_values(self.critic, batch.input_ids[ix], batch.attention_mask[ix],
                                                  batch.response_length) for ix in chunks][:real])
        self.old_logprobs, self.kl_ref = old, ref
        return old, (None if self.cfg.gae.kl_in_reward else ref)

    def advantages(self, batch: Batch) -> torch.Tensor:
        from rl_reason.algorithms import ADVANTAGES, kl_penalised_rewards

        mask = batch.response_mask
        if batch.input_ids.shape[0] == 0:
            return torch.zeros_like(mask)
        lengths = mask.sum(-1).long()
        last = (lengths - 1).clamp(min=0)
        rewards = torch.zeros_like(mask)
        rewards[torch.arange(mask.shape[0]), last] = batch.scores.float() * (lengths > 0)
        self.kl_stats = {}
        if self.kl_ref is not None and self.cfg.gae.kl_in_reward:
            rewards, kl = kl_penalised_rewards(rewards, self.old_logprobs, self.kl_ref, mask,
                                               beta=self.cfg.algorithm.kl_coef, kind="k1")
            self.kl_stats = {"ppo/kl_in_reward": float(kl.sum() / mask.sum().clamp(min=1))}
        g = self.cfg.gae
        adv, self.returns = ADVANTAGES.get("gae")(response_mask=mask, token_rewards=rewards, values=self.old_values,
                                                  gamma=g.gamma, lam=g.lam, norm_by_std=g.whiten_advantages)
        return adv

    # ------------------------------------------------------------ updates
    def update_policy(self, batch: Batch, old_logprobs, ref_logprobs, advantages) -> dict[str, float]:
        from rl_reason.algorithms import explained_variance, masked_mean

        stats = {}
        if batch.input_ids.shape[0]:
            mask = batch.response_mask
            stats = {"critic/returns_mean": float(masked_mean(self.returns, mask)),
                     "critic/values_mean": float(masked_mean(self.old_values, mask)),
                     "critic/explained_variance": float(explained_variance(self.old_values, self.returns, mask)),
                     "ppo/advantages_mean": float(masked_mean(advantages, mask)), **self.kl_stats}
            stats.update(self.update_critic(batch))
        stats.update(super().update_policy(batch, old_logprobs, ref_logprobs, advantages))
        return stats

    def update_critic(self, batch: Batch) -> dict[str, float]:
        from rl_reason.algorithms import aggregate_loss, clipped_value_loss
        from rl_reason.models.heads import token_values

        cfg = self.cfg
        B = batch.input_ids.shape[0]
        clip = cfg.critic.value_clip or None
        gen = torch.Generator().manual_seed(step_seed(cfg.seed, self.step, 104729))
        sums: Counter[str] = Counter()
        updates = 0
        for _ in range(cfg.train.ppo_epochs):
            order = torch.randperm(B, generator=gen).to(batch.input_ids.device)
            for mini in order.tensor_split(cfg.train.mini_batches):
                if mini.numel() == 0:
                    continue
                self.critic_engine.zero_grad()
                n_tokens = batch.response_mask[mini].sum()
                micros = list(mini.split(cfg.train.micro_batch_size))
                n_local = len(micros)
                # As in the actor's update: a short batch repeats its last micro-batch with weight 0.
                micros += [micros[-1]] * (_micro_batches_per_update(cfg, self.prompts_per_rank) - n_local)
                for j, micro in enumerate(micros):
                    mask = batch.response_mask[micro]
                    values = token_values(self.critic, batch.input_ids[micro], batch.attention_mask[micro], batch.response_length)
                    loss_mat, m = clipped_value_loss(values=values, old_values=self.old_values[micro],
                                                     returns=self.returns[micro], response_mask=mask, clip_range=clip)
                    loss = aggregate_loss(loss_mat, mask, "token-mean", global_num_tokens=n_tokens)
                    if j >= n_local:
                        self.critic_engine.backward(loss * 0.0)
                        continue
                    self.critic_engine.backward(loss)
                    sums["critic/value_loss"] += float(loss.detach())
                    sums["critic/value_clip_frac"] += float(m["value_clip_frac"]) * float(mask.sum()) / float(n_tokens.clamp(min=1))
                sums["critic/grad_norm"] += self.critic_engine.step()
                updates += 1
        return {k: v / max(updates, 1) for k, v in sums.items()}

    # ------------------------------------------------------------ metrics
    def reward_metrics(self, groups) -> dict[str, float]:
        out = super().reward_metrics(groups)
        rm = np.array([s.rm_score for g in groups for s in g.scored], dtype=float)
        ver = np.array([s.verifier_score for g in groups for s in g.scored], dtype=float)
        if len(rm) and np.isfinite(rm).all():
            out["rm/score_mean"] = float(rm.mean())
            out["rm/score_std"] = float(rm.std())
            if rm.std() > 0 and ver.std() > 0:
                out["rm/verifier_corr"] = float(np.corrcoef(rm, ver)[0, 1])
        if len(ver):
            out["verifier/score_mean"] = float(ver.mean())
        return out


def train(cfg: PPOConfig) -> Path:
    """Run (or resume) a PPO job; returns the run folder."""
    PPOTrainer(cfg).train()
    return Path(cfg.output_dir)

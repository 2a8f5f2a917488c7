"""Reward-model training: a scalar head on a causal-LM backbone, pairwise Bradley-Terry loss.

    loss = -log sigmoid(r(prompt, chosen) - r(prompt, rejected) - margin) [+ c (r_c + r_r)^2]
(``rl_reason.algorithms.bradley_terry_loss``). Pairs come from a TRL prompt/chosen/rejected
file or hub id, or are minted from the backbone's own samples graded by the verifiers
(``pairs.data``). Reports held-out pairwise accuracy; ``RUN/final`` is an HF
``AutoModelForSequenceClassification`` folder that PPO and ``rl-reason score`` load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rl_reason.trainers.common.encoding import as_text, encode
from rl_reason.trainers.common.seeding import seed_everything
from rl_reason.trainers.offline import OfflineTrainer
from rl_reason.trainers.pair_data import PAIR_KEYS, load_rows, train_eval_rows
from rl_reason.trainers.post_config import RewardModelConfig


@torch.no_grad()
def score_texts(model, tokenizer, prompts: list[str], responses: list[str], max_prompt_tokens: int,
                max_response_tokens: int, batch_size: int = 16) -> torch.Tensor:
    """Reward of each (prompt, response) pair, (N,) float32 on CPU."""
    from rl_reason.models.heads import sequence_scores

    device = next(model.parameters()).device
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = encode(tokenizer, prompts[i : i + batch_size], responses[i : i + batch_size], max_prompt_tokens,
                     max_response_tokens, device)
        out.append(sequence_scores(model, enc.input_ids, enc.attention_mask).cpu())
    return torch.cat(out) if out else torch.zeros(0)


class RewardModelTrainer(OfflineTrainer):
    name = "rm"
    lora_task = "seq_cls"

    def __init__(self, cfg: RewardModelConfig, model=None, tokenizer=None) -> None:
        from rl_reason.models.heads import load_scalar_model

        seed_everything(cfg.seed)
        if model is None:
            model, tokenizer = load_scalar_model(cfg.model.name, dtype=cfg.model.dtype, device=cfg.model.device)
        self.model, self.tokenizer = model, tokenizer
        self.train_rows, self.eval_rows = train_eval_rows(self._pairs(cfg), cfg.data, cfg.seed,
                                                          lambda path: load_rows(path, PAIR_KEYS))
        self.setup(cfg)

    def _pairs(self, cfg: RewardModelConfig) -> list[dict[str, Any]]:
        if cfg.data.train:
            return load_rows(cfg.data.train, PAIR_KEYS + ((cfg.data.margin_key,) if cfg.data.margin_key else ()),
                             cfg.data.limit)
        from rl_reason.models import load_model
        from rl_reason.trainers.minting import mint_pairs

        # Minting samples with the backbone as a policy (the causal LM, not the scalar model).
        policy, tok = load_model(cfg.model.name, dtype=cfg.model.dtype, device=cfg.model.device)
        pairs = mint_pairs(policy, tok, cfg.pairs, Path(cfg.output_dir) / "pairs", cfg.seed, cfg.log.progress)
        del policy
        return pairs[: cfg.data.limit] if cfg.data.limit else pairs

    def rewards(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(chosen rewards (B,), rejected rewards (B,)) in one forward over 2B sequences."""
        from rl_reason.models.heads import sequence_scores

        prompts = [as_text(r["prompt"], self.tokenizer, "prompt") for r in rows]
        responses = [as_text(r[k], self.tokenizer, k) for k in ("chosen", "rejected") for r in rows]
        enc = encode(self.tokenizer, prompts + prompts, responses, self.cfg.model.max_prompt_tokens,
                     self.max_response_tokens, self.cfg.model.device)
        scores = sequence_scores(self.model, enc.input_ids, enc.attention_mask)
        return scores[: len(rows)], scores[len(rows) :]

    def micro_loss(self, rows):
        from rl_reason.algorithms import bradley_terry_loss

        chosen, rejected = self.rewards(rows)
        margin = None
        if self.cfg.data.margin_key:
            margin = torch.tensor([float(r[self.cfg.data.margin_key]) for r in rows], device=chosen.device)
        losses, metrics = bradley_terry_loss(chosen, rejected, margin=margin, center_coef=self.cfg.loss.center_coef)
        return losses.mean(), {f"train/{k}": float(v) for k, v in metrics.items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if not self.eval_rows:
            return {}
        c, r = (torch.cat(scores) for scores in zip(*(self.rewards(chunk) for chunk in self.eval_batches())))
        return {"eval/accuracy": float((c > r).float().mean()), "eval/margin": float((c - r).mean()),
                "eval/pairs": float(len(c))}


def train(cfg: RewardModelConfig) -> Path:
    """Train (or resume) a reward model; the HF model lands in ``output_dir/final``."""
    trainer = RewardModelTrainer(cfg)
    trainer.train()
    trainer.save_final()
    return Path(cfg.output_dir)

"""KTO on unpaired responses labelled desirable / undesirable (``trainer: kto``).

The loss is ``rl_reason.algorithms.UNPAIRED_LOSSES["kto"]``. As in the DPO trainer, the
reference is the policy before training: its log-probs are computed once and cached with each
row. The reference point z0 (a batch estimate of KL(policy || reference)) uses mismatched
prompt/response pairs, as TRL's KTO does: each row is paired once, at load time, with the
response of a row of another prompt (``pair_data.mismatched_indices`` over a seeded shuffle), so
its reference log-prob can be cached too. z0 is taken over the whole step batch (all
micro-batches, every rank holds it), without gradient, as in TRL, so gradient accumulation and
data parallelism do not change it. With ``pairs.data`` the rows are the policy's own samples,
each labelled by the verifier (``rl-reason pairs --unpaired`` writes the same rows).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import torch

from rl_reason.trainers.common.encoding import as_text
from rl_reason.trainers.dpo import CachedReferenceTrainer, response_logps, run_preference
from rl_reason.trainers.pair_data import UNPAIRED_KEYS, UNPAIRED_TYPES, mismatched_indices
from rl_reason.trainers.post_config import KTOConfig

SIDE_METRICS = {"rewards/chosen": True, "rewards/rejected": False, "logps/chosen": True, "logps/rejected": False}


class KTOTrainer(CachedReferenceTrainer):
    name = "kto"
    cfg: KTOConfig

    def __init__(self, cfg: KTOConfig, model, tokenizer, rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]):
        balance_note(rows, cfg.loss.desirable_weight, cfg.loss.undesirable_weight)
        self._kl_batch: tuple[list, torch.Tensor, torch.Tensor] | None = None
        super().__init__(cfg, model, tokenizer, rows, eval_rows)

    def logps(self, rows: list[dict[str, Any]], key: str = "completion") -> torch.Tensor:
        """Log-prob sums (B,) of each row's ``key`` response after its prompt."""
        prompts = [as_text(r["prompt"], self.tokenizer, "prompt") for r in rows]
        responses = [as_text(r[key], self.tokenizer, "completion") for r in rows]
        logps, _ = response_logps(
            self.model,
            self.tokenizer,
            prompts,
            responses,
            self.cfg.model.max_prompt_tokens,
            self.max_response_tokens,
            self.cfg.model.device,
        )
        return logps

    @torch.no_grad()
    def with_reference(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of ``rows`` with a mismatched response (``kl_completion``) and the current
        policy's log-prob sums of their own response (``ref_logps``) and of the mismatched one
        (``ref_kl_logps``) as the reference."""
        rows = with_kl_completions(rows, self.cfg.seed) if rows else []
        self.model.eval()
        out = []
        mb = self.cfg.train.micro_batch_size
        for i in range(0, len(rows), mb):
            chunk = rows[i : i + mb]
            own, kl = self.logps(chunk), self.logps(chunk, "kl_completion")
            out.extend(
                {**row, "ref_logps": float(a), "ref_kl_logps": float(b)}
                for row, a, b in zip(chunk, own.tolist(), kl.tolist())
            )
        return out

    @torch.no_grad()
    def kl_logps(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy and reference log-prob sums (B,) of ``rows``' mismatched pairs, micro-batched."""
        mb = self.cfg.train.micro_batch_size
        policy = torch.cat([self.logps(rows[i : i + mb], "kl_completion") for i in range(0, len(rows), mb)])
        return policy, torch.tensor([r["ref_kl_logps"] for r in rows], device=policy.device)

    def losses(self, rows: list[dict[str, Any]], policy_logps: torch.Tensor, kl: tuple[torch.Tensor, torch.Tensor]):
        from rl_reason.algorithms import UNPAIRED_LOSSES

        dev = policy_logps.device
        loss = self.cfg.loss
        return UNPAIRED_LOSSES.get("kto")(
            policy_logps=policy_logps,
            ref_logps=torch.tensor([r["ref_logps"] for r in rows], device=dev),
            desirable=torch.tensor([r["label"] for r in rows], device=dev),
            kl_policy_logps=kl[0],
            kl_ref_logps=kl[1],
            beta=loss.beta,
            desirable_weight=loss.desirable_weight,
            undesirable_weight=loss.undesirable_weight,
        )

    def micro_loss(self, rows):
        # z0 once per step, over the whole step batch (the policy does not change within a step).
        if self._kl_batch is None or self._kl_batch[0] is not self.step_rows:
            self._kl_batch = (self.step_rows, *self.kl_logps(self.step_rows))
        losses, metrics = self.losses(rows, self.logps(rows), self._kl_batch[1:])
        share = self.step_rows[self.dist.rank :: self.dist.world_size]
        stats = {f"train/{k}": float(v) for k, v in metrics.items() if k not in SIDE_METRICS}
        # update() weights each micro-batch by its row share; a side's mean must instead weight by
        # that side's rows, a micro-batch without the side adds nothing, and a side absent from
        # the whole step is not logged.
        for k, desirable in SIDE_METRICS.items():
            n_micro = sum(bool(r["label"]) == desirable for r in rows)
            n_share = sum(bool(r["label"]) == desirable for r in share)
            if n_share:
                stats[f"train/{k}"] = float(metrics[k]) * n_micro / n_share * len(share) / len(rows) if n_micro else 0.0
        stats["train/desirable_share"] = sum(bool(r["label"]) for r in rows) / len(rows)
        return losses.mean(), stats

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if not self.eval_rows:
            return {}
        chunks = list(self.eval_batches())
        policy = torch.cat([self.logps(c) for c in chunks])
        losses, metrics = self.losses(self.eval_rows, policy, self.kl_logps(self.eval_rows))
        return {f"eval/{k}": float(v) for k, v in {"loss": losses.mean(), **metrics}.items()}


def with_kl_completions(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Copies of ``rows`` with ``kl_completion``: the completion of a row of another prompt."""
    prompts = [str(r["prompt"]) for r in rows]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [{**r, "kl_completion": rows[j]["completion"]} for r, j in zip(rows, mismatched_indices(prompts, order))]


def balance_note(rows: list[dict[str, Any]], desirable_weight: float, undesirable_weight: float) -> None:
    """Warn, as TRL does, when the weighted desirable : undesirable ratio leaves the paper's [1, 4/3]."""
    n_good = sum(bool(r["label"]) for r in rows)
    n_bad = len(rows) - n_good
    if n_good == 0 or n_bad == 0:
        print(f"note: kto: all {len(rows)} training rows are {'un' if n_good == 0 else ''}desirable", file=sys.stderr)
        return
    ratio = desirable_weight * n_good / (undesirable_weight * n_bad) if undesirable_weight else float("inf")
    if not 1.0 <= ratio <= 4 / 3:
        print(
            f"note: kto: {n_good} desirable and {n_bad} undesirable rows give a weighted ratio of {ratio:.2f}, "
            f"outside the paper's [1, 4/3]; e.g. loss.desirable_weight={n_bad / n_good:.3g} "
            "(with undesirable_weight=1) gives 1",
            file=sys.stderr,
        )


def train(cfg: KTOConfig) -> Path:
    """Run KTO on an unpaired rows file, or the loop sample -> label by the verifier -> KTO (iterated)."""
    from rl_reason.trainers.minting import mint_unpaired

    return run_preference(cfg, KTOTrainer, UNPAIRED_KEYS, UNPAIRED_TYPES, mint_unpaired, "no samples")

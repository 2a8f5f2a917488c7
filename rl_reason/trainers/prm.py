"""Process reward model training: a two-class token head on a causal-LM backbone, loss on step ends.

Each row is a prompt and its solution's steps with one label per step (``data_pipelines.step_labels``:
stepwise, Math-Shepherd or PRM800K files, or Monte-Carlo labels from the backbone's own rollouts,
``trainers.prm_labels``). Steps are joined by ``data.separator`` and only the separator's last
token carries the step's label (``trainers.common.encoding.encode_steps``, TRL's PRMTrainer
layout); the loss is ``algorithms.prm_loss``. Reports held-out step accuracy; ``RUN/final`` is an
HF ``AutoModelForTokenClassification`` folder that GRPO (``reward.prm``) and ``rl-reason eval
--rerank`` load (``ProcessScorer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rl_reason.algorithms import IGNORE_INDEX, STEP_AGGREGATIONS, prm_loss, step_probabilities
from rl_reason.eval.metrics import roc_auc
from rl_reason.trainers.common.encoding import encode_steps
from rl_reason.trainers.common.seeding import seed_everything
from rl_reason.trainers.offline import OfflineTrainer
from rl_reason.trainers.pair_data import train_eval_rows
from rl_reason.trainers.post_config import PRMConfig


class ProcessScorer:
    """Scores solutions with a trained PRM: ``scorer(prompts, responses)`` -> (B,) aggregated
    step probabilities (``algorithms.STEP_AGGREGATIONS``). A response is cut into steps at the
    separator the PRM was trained with (saved in its config)."""

    def __init__(self, path: str | Path, aggregation: str = "min", dtype: str = "float32", device: str = "cpu",
                 max_prompt_tokens: int = 256, max_response_tokens: int = 512, batch_size: int = 16):
        from rl_reason.models.heads import load_step_model

        self.model, self.tokenizer = load_step_model(path, dtype=dtype, device=device)
        self.model.requires_grad_(False)
        self.separator = getattr(self.model.config, "prm_step_separator", "\n")
        self.aggregate = STEP_AGGREGATIONS.get(aggregation)
        self.limits = (max_prompt_tokens, max_response_tokens)
        self.batch_size = batch_size
        self.device = device

    @torch.no_grad()
    def step_scores(self, prompts: list[str], steps: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores (B, S), mask (B, S)) of P(step is good) for each row's steps, one batch."""
        from rl_reason.models.heads import head_outputs

        enc = encode_steps(self.tokenizer, prompts, steps, self.separator, *self.limits, device=self.device)
        return step_probabilities(head_outputs(self.model, enc.input_ids, enc.attention_mask), enc.step_end)

    def __call__(self, prompts: list[str], responses: list[str]) -> torch.Tensor:
        from rl_reason.data_pipelines.step_labels import split_steps

        out = []
        for i in range(0, len(prompts), self.batch_size):
            steps = [split_steps(r, self.separator) for r in responses[i : i + self.batch_size]]
            scores, mask = self.step_scores(prompts[i : i + self.batch_size], steps)
            out.append(self.aggregate(step_scores=scores, step_mask=mask).cpu())
        return torch.cat(out) if out else torch.zeros(0)


class ProcessReward:
    """A reward function (``trainers.rewards.RewardFn``) that mixes a PRM's aggregated step score
    into another's: ``(1 - w) * inner + w * PRM(question, response)`` (``algorithms.mix_process_outcome``).
    The PRM reads the bare question (``Example.prompt``), as its training rows hold it; the score
    is logged as the ``reward/prm`` component, correctness and validity stay the inner verifier's."""

    def __init__(self, inner, cfg):
        self.inner = inner
        self.weight = cfg.reward.prm.weight
        # Re-tokenised steps plus separators can outgrow the response: give them the whole context left.
        self.scorer = ProcessScorer(cfg.reward.prm.path, cfg.reward.prm.aggregation, cfg.model.dtype, cfg.model.device,
                                    cfg.model.max_prompt_tokens, cfg.model.max_seq_len - cfg.model.max_prompt_tokens)

    def __call__(self, examples, responses):
        from rl_reason.algorithms import mix_process_outcome

        scored = self.inner(examples, responses)
        process = self.scorer([ex.prompt for ex in examples], responses)
        mixed = mix_process_outcome(torch.tensor([s.reward for s in scored]), process, self.weight)
        for s, p, r in zip(scored, process.tolist(), mixed.tolist()):
            s.components["prm"] = p
            s.reward = r
        return scored

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class PRMTrainer(OfflineTrainer):
    name = "prm"

    def __init__(self, cfg: PRMConfig, model=None, tokenizer=None) -> None:
        from rl_reason.data_pipelines.step_labels import load_step_rows
        from rl_reason.models.heads import load_step_model

        seed_everything(cfg.seed)
        if model is None:
            model, tokenizer = load_step_model(cfg.model.name, dtype=cfg.model.dtype, device=cfg.model.device)
        model.config.prm_step_separator = cfg.data.separator  # saved with the model: scoring splits the same way
        self.model, self.tokenizer = model, tokenizer
        self.train_rows, self.eval_rows = train_eval_rows(self._rows(cfg), cfg.data, cfg.seed,
                                                          lambda path: load_step_rows(path, cfg.data.format))
        self.setup(cfg)

    def _rows(self, cfg: PRMConfig) -> list[dict[str, Any]]:
        from rl_reason.data_pipelines.step_labels import load_step_rows

        if cfg.data.train:
            return load_step_rows(cfg.data.train, cfg.data.format, cfg.data.limit)
        from rl_reason.models import load_model
        from rl_reason.trainers.prm_labels import mc_label

        # Labelling samples with the backbone as a policy (the causal LM, not the token classifier).
        policy, tok = load_model(cfg.model.name, dtype=cfg.model.dtype, device=cfg.model.device)
        rows = mc_label(policy, tok, cfg.label, cfg.data.separator, Path(cfg.output_dir) / "labels", cfg.seed,
                        cfg.log.progress)
        del policy
        return rows[: cfg.data.limit] if cfg.data.limit else rows

    def forward(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(step logits (B, T, 2), labels (B, T)) of a micro-batch."""
        from rl_reason.models.heads import head_outputs

        enc = encode_steps(self.tokenizer, [r["prompt"] for r in rows], [r["completions"] for r in rows],
                           self.cfg.data.separator, self.cfg.model.max_prompt_tokens, self.max_response_tokens,
                           labels=[r["labels"] for r in rows], device=self.cfg.model.device)
        return head_outputs(self.model, enc.input_ids, enc.attention_mask), enc.labels

    def micro_loss(self, rows):
        loss, metrics = prm_loss(*self.forward(rows))
        return loss, {f"train/{k}": float(v) for k, v in metrics.items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out step accuracy, also per class (a PRM that calls every step good scores the
        positive share on plain accuracy; balanced accuracy shows it), and ROC AUC."""
        if not self.eval_rows:
            return {}
        probs, targets = [], []
        for chunk in self.eval_batches():
            logits, labels = self.forward(chunk)
            mask = labels != IGNORE_INDEX
            probs.append(logits[mask].float().softmax(-1)[:, 1].cpu())
            targets.append(labels[mask].cpu())
        prob, target = torch.cat(probs), torch.cat(targets)
        pred = (prob > 0.5).long()
        out = {"eval/step_accuracy": float((pred == target).float().mean()), "eval/steps": float(len(target)),
               "eval/positive_share": float((target == 1).float().mean())}
        recalls = [float((pred[target == c] == c).float().mean()) for c in (0, 1) if (target == c).any()]
        out["eval/balanced_accuracy"] = sum(recalls) / len(recalls)
        if len(recalls) == 2:  # ranking quality, whatever the threshold
            out["eval/auroc"] = roc_auc(prob.tolist(), (target == 1).tolist())
        return out


def train(cfg: PRMConfig) -> Path:
    """Train (or resume) a process reward model; the HF model lands in ``output_dir/final``."""
    trainer = PRMTrainer(cfg)
    trainer.train()
    trainer.save_final()
    return Path(cfg.output_dir)

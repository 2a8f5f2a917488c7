"""Supervised fine-tuning on chat data with the loss on assistant tokens only (warm start for RL).

Rows are chat ``messages`` (TRL conversational format) or ``prompt``/``completion`` pairs.
Each row becomes token ids plus a 0/1 label mask: the template's scaffolding, system and user
turns and the assistant header are 0, assistant contents (and their end-of-turn tokens) 1.
With ``data.packing`` rows are concatenated into ``model.max_seq_len`` blocks (the classic
constant-length packing: attention crosses example boundaries, no padding is wasted).
Rejection-sampling fine-tuning (``rejection_sampling.data``) samples the model, keeps only the
verified-correct answers (``trainers.minting.correct_samples``) and trains on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rl_reason.trainers.common.encoding import as_text
from rl_reason.trainers.offline import OfflineTrainer
from rl_reason.trainers.pair_data import load_rows
from rl_reason.trainers.post_config import SFTConfig


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize_example(row: dict[str, Any], tokenizer) -> tuple[list[int], list[int]]:
    """(token ids, labels) of one row; labels are 1 on assistant tokens only."""
    if "messages" in row:
        messages = row["messages"]
        ids: list[int] = []
        labels: list[int] = []
        rendered = ""
        for j, msg in enumerate(messages):
            if msg.get("role") == "assistant":
                header = tokenizer.apply_chat_template(messages[:j], tokenize=False, add_generation_prompt=True)
                piece = _ids(tokenizer, header[len(rendered):])
                ids += piece
                labels += [0] * len(piece)
                rendered = header
            full = tokenizer.apply_chat_template(messages[: j + 1], tokenize=False)
            if not full.startswith(rendered):
                raise ValueError(f"chat template does not render message {j} as an extension of the previous ones")
            piece = _ids(tokenizer, full[len(rendered):])
            ids += piece
            labels += [int(msg.get("role") == "assistant")] * len(piece)
            rendered = full
        return ids, labels
    prompt = _ids(tokenizer, as_text(row["prompt"], tokenizer, "prompt"))
    completion = _ids(tokenizer, as_text(row["completion"], tokenizer, "completion")) + [tokenizer.eos_token_id]
    return prompt + completion, [0] * len(prompt) + [1] * len(completion)


def pack(examples: list[tuple[list[int], list[int]]], block: int) -> list[tuple[list[int], list[int]]]:
    """Concatenate examples and cut into ``block``-token rows (the last, shorter one kept)."""
    ids = [t for e in examples for t in e[0]]
    labels = [t for e in examples for t in e[1]]
    return [(ids[i : i + block], labels[i : i + block]) for i in range(0, len(ids), block)]


class SFTTrainer(OfflineTrainer):
    name = "sft"

    def __init__(self, cfg: SFTConfig, model, tokenizer, rows: list[dict[str, Any]]) -> None:
        import random

        self.model, self.tokenizer = model, tokenizer
        examples = []
        for i, row in enumerate(rows):
            if "messages" not in row and not ("prompt" in row and "completion" in row):
                raise ValueError(f"{cfg.data.train} row {i + 1}: needs 'messages' or 'prompt' and 'completion'")
            ids, labels = tokenize_example(row, tokenizer)
            if not any(labels):
                raise ValueError(f"{cfg.data.train or 'rejection-sampled data'} row {i + 1}: no assistant tokens to train on")
            examples.append((ids[: cfg.model.max_seq_len], labels[: cfg.model.max_seq_len]))
        order = list(range(len(examples)))
        random.Random(cfg.seed).shuffle(order)
        n_eval = int(round(cfg.data.eval_fraction * len(examples)))
        held, kept = [examples[i] for i in order[:n_eval]], [examples[i] for i in order[n_eval:]]
        if cfg.data.packing:
            kept = pack(kept, cfg.model.max_seq_len)
        self.train_rows = [{"ids": ids, "labels": labels} for ids, labels in kept]
        self.eval_rows = [{"ids": ids, "labels": labels} for ids, labels in held]
        self.setup(cfg)

    def token_loss(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed NLL over label tokens, and their count."""
        from rl_reason.models import token_logprobs

        pad = self.tokenizer.pad_token_id
        T = max(len(r["ids"]) for r in rows)
        B = len(rows)
        ids = torch.full((B, T), pad, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        labels = torch.zeros((B, T))
        for b, r in enumerate(rows):
            n = len(r["ids"])
            ids[b, :n] = torch.tensor(r["ids"])
            mask[b, :n] = 1
            labels[b, :n] = torch.tensor(r["labels"], dtype=torch.float32)
        device = self.cfg.model.device
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        # Column 0 plays the one-token "prompt"; every later token is scored as a response token.
        # Head projections counted from the batch shape, not the token count: equal on every rank (ZeRO-3).
        head_chunks = -(-B * self.cfg.model.max_seq_len // 1024)
        logp, _ = token_logprobs(self.model, ids, mask, response_length=T - 1, num_chunks=head_chunks)
        target = labels[:, 1:] * mask[:, 1:]
        return -(logp * target).sum(), target.sum()

    def micro_loss(self, rows):
        """The NLL per label token of the whole step's batch, not of this micro-batch: a per-micro
        mean would change with the micro-batch split and the number of ranks (the gradient
        accumulation bug TRL fixed with ``num_items_in_batch``). The loop weights each micro-batch
        by ``len(rows) / len(local rows)`` and ranks average, hence the factor here."""
        nll, tokens = self.token_loss(rows)
        step_tokens = max(sum(sum(r["labels"][1:]) for r in self.step_rows), 1)
        loss = nll * len(self.step_rows) / (step_tokens * len(rows))
        return loss, {"train/tokens": float(tokens)}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if not self.eval_rows:
            return {}
        nll, tokens = 0.0, 0.0
        for chunk in self.eval_batches():
            a, b = self.token_loss(chunk)
            nll, tokens = nll + float(a), tokens + float(b)
        return {"eval/loss": nll / max(tokens, 1.0)}


def train(cfg: SFTConfig) -> Path:
    from rl_reason.trainers.minting import log_task, start_policy_run, task_accuracy

    run_dir, model, tokenizer = start_policy_run(cfg)
    if cfg.data.train:
        rows = load_rows(cfg.data.train, (), cfg.data.limit)
    else:
        rows = rejection_sampled_rows(cfg, run_dir, model, tokenizer)
        if not rows:
            raise RuntimeError(f"rejection sampling kept no correct answer ({run_dir / 'rejection_sampling'})")
    fine_tune(cfg, model, tokenizer, rows)
    if cfg.task_eval.data:
        log_task(run_dir, "after", task_accuracy(model, tokenizer, cfg.task_eval, cfg.seed, cfg.log.progress))
    return run_dir


def rejection_sampled_rows(cfg: SFTConfig, run_dir: Path, model, tokenizer) -> list[dict[str, Any]]:
    from rl_reason.trainers.minting import correct_samples

    return correct_samples(model, tokenizer, cfg.rejection_sampling, run_dir / "rejection_sampling", cfg.seed,
                           cfg.log.progress)


def fine_tune(cfg: SFTConfig, model, tokenizer, rows: list[dict[str, Any]]) -> Path:
    """Train on ``rows``; returns the saved ``final/`` folder."""
    trainer = SFTTrainer(cfg, model, tokenizer, rows)
    trainer.train()
    return trainer.save_final()

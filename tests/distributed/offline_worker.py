"""One SFT or KTO step through the offline trainers' loop, run by test_offline_data_parallel.py
under ``python`` (one process) or ``torchrun`` (2 ranks), writing the gradients and metrics to OUT.

usage: offline_worker.py OUT KIND ENGINE   (KIND: sft | kto; ENGINE: a distributed.engine)
Rows differ in length and content, so a rank that trained on the wrong share, or a loss weighted
by the wrong row or token count, gives different gradients than one process over the whole batch.
KTO's policy is moved off its cached reference first, so that its reference point z0 (taken over
the whole step batch) is not 0 and a per-rank z0 would change the gradients.
(Gradients, not weights after AdamW: its first step is ~lr * sign(grad), which turns fp noise in
near-zero gradients into full moves.)
"""

import json
import os
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor, distribute_tensor

from rl_reason.config import load_config
from rl_reason.distributed import setup as dist
from rl_reason.models import tiny_model
from rl_reason.trainers.post_config import KTOConfig, SFTConfig


def main(out: Path, kind: str, engine: str) -> None:
    rows = [{"prompt": f"{i} plus {i % 3} is", "completion": " " + " ".join(["x"] * (1 + i % 4)) + f" {i + i % 3}",
             "label": i % 3 > 0} for i in range(16)]
    data = out / f"{kind}_rank{os.environ.get('RANK', '0')}.jsonl"  # before init: one file per process
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    overrides = [
        f"output_dir={out / 'run'}", f"data.train={data}", "resume=never", "model.max_seq_len=32", "data.eval_fraction=0", "train.steps=1",
        "train.batch_size=8", "train.micro_batch_size=2", "train.lr=1e-2", "train.max_grad_norm=0", "eval_every=0",
        "checkpoint.every=0", "log.tensorboard=false", "log.progress=false", "distributed.timeout_s=120",
        f"distributed.engine={engine}"]
    model, tokenizer = tiny_model("llama", seed=0)
    if kind == "sft":
        from rl_reason.trainers.sft import SFTTrainer

        trainer = SFTTrainer(load_config(SFTConfig, None, overrides), model, tokenizer, rows)
        key = lambda row: tuple(row["ids"])  # noqa: E731
    else:
        from rl_reason.trainers.kto import KTOTrainer

        trainer = KTOTrainer(load_config(KTOConfig, None, overrides + ["model.max_prompt_tokens=16"]), model, tokenizer,
                             rows, [])
        with torch.no_grad():
            noise = torch.Generator().manual_seed(1)
            for p in model.parameters():
                step = 0.05 * torch.randn(p.shape, generator=noise)
                p.add_(distribute_tensor(step, p.device_mesh, p.placements) if isinstance(p, DTensor) else step)
        for row in trainer.train_rows:
            row["ref_kl_logps"] -= 3.0
        key = lambda row: (row["prompt"], row["completion"])  # noqa: E731
    seen, micro_loss = [], trainer.micro_loss

    def recording_micro_loss(micro):
        seen.extend(key(row) for row in micro)
        return micro_loss(micro)

    trainer.micro_loss = recording_micro_loss
    trainer.train()
    metrics = (out / "run" / "metrics.jsonl").read_text() if dist.is_main() else ""
    # FSDP2 holds a DTensor shard of each gradient: gathered whole (a collective)
    full = lambda g: g.full_tensor() if isinstance(g, DTensor) else g.clone()  # noqa: E731
    torch.save({"grads": {n: full(p.grad) for n, p in model.named_parameters()}, "metrics": metrics,
                "seen": seen}, out / f"world{dist.world_size()}_rank{dist.rank()}.pt")
    dist.finish_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])

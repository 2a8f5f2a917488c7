"""One SFT step through the offline trainers' loop, run by test_offline_data_parallel.py under
``python`` (one process) or ``torchrun`` (2 ranks), writing the gradients and metrics to OUT.

usage: offline_worker.py OUT
Rows differ in length and content, so a rank that trained on the wrong share, or a loss weighted
by the wrong row or token count, gives different gradients than one process over the whole batch.
(Gradients, not weights after AdamW: its first step is ~lr * sign(grad), which turns fp noise in
near-zero gradients into full moves.)
"""

import json
import os
import sys
from pathlib import Path

import torch

from rl_reason.config import load_config
from rl_reason.distributed import setup as dist
from rl_reason.models import tiny_model
from rl_reason.trainers.post_config import SFTConfig
from rl_reason.trainers.sft import SFTTrainer


def main(out: Path) -> None:
    rows = [{"prompt": f"{i} plus {i % 3} is", "completion": " " + " ".join(["x"] * (1 + i % 4)) + f" {i + i % 3}"}
            for i in range(16)]
    data = out / f"sft_rank{os.environ.get('RANK', '0')}.jsonl"  # before init: one file per process
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cfg = load_config(SFTConfig, None, [
        f"output_dir={out / 'run'}", f"data.train={data}", "resume=never", "model.max_seq_len=32", "data.eval_fraction=0", "train.steps=1",
        "train.batch_size=8", "train.micro_batch_size=2", "train.lr=1e-2", "train.max_grad_norm=0", "eval_every=0",
        "checkpoint.every=0", "log.tensorboard=false", "log.progress=false", "distributed.timeout_s=120"])
    model, tokenizer = tiny_model("llama", seed=0)
    trainer = SFTTrainer(cfg, model, tokenizer, rows)
    seen, micro_loss = [], trainer.micro_loss

    def recording_micro_loss(micro):
        seen.extend(tuple(row["ids"]) for row in micro)
        return micro_loss(micro)

    trainer.micro_loss = recording_micro_loss
    trainer.train()
    metrics = (out / "run" / "metrics.jsonl").read_text() if dist.is_main() else ""
    torch.save({"grads": {n: p.grad.clone() for n, p in model.named_parameters()}, "metrics": metrics,
                "seen": seen}, out / f"world{dist.world_size()}_rank{dist.rank()}.pt")
    dist.finish_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Peak memory of the quickstart GRPO trainer with LoRA (reference = adapter off) vs full fine-tuning.

Each setting runs in a fresh process: build ``GRPOTrainer`` from ``recipes/quickstart.yaml``
(SmolLM2-135M-Instruct, float32, CPU) with a KL term (``algorithm.kl_coef=0.05``, so a reference
model is needed), then one training step (rollout of 2 prompts x 8 samples, reward, reference
log-probs, update, checkpoint). Reported per setting: the process's peak resident memory after
building the trainer and after the step (``VmHWM``), trainable/total parameters, whether the
reference is a second model, and the step's wall time; then LoRA's ratios to full fine-tuning.

Both settings run twice: with glibc's default allocator and with ``MALLOC_MMAP_THRESHOLD_=65536``
(every tensor over 64 KiB gets its own mapping, returned on free). The default allocator keeps
freed heap memory in the process, so a forward that makes many short-lived tensors (peft's
LoRA layers add two per adapted linear layer) raises the resident peak without holding more live
tensors; the fixed threshold measures what is live.

Run: ``PYTHONPATH=$PWD python3 benchmarks/lora_memory.py [--rank 16] [--steps 1]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux ``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def reset_peak_rss() -> None:
    """Start a new peak: writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def phase_peaks(trainer, peaks: dict[str, float]) -> None:
    """Record the peak RSS of each phase of a GRPO step (rollout, reference log-probs, update)."""
    for name in ("collect_groups", "reference_logprobs", "update_policy"):
        method = getattr(trainer, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            reset_peak_rss()
            try:
                return _method(*args, **kwargs)
            finally:
                peaks[_name] = max(peaks.get(_name, 0.0), peak_rss_mib())

        setattr(trainer, name, timed)


def child(rank: int, steps: int) -> dict:
    import torch

    from rl_reason.config import load_config
    from rl_reason.models.lora import trainable_parameters
    from rl_reason.trainers.grpo import GRPOTrainer
    from rl_reason.trainers.grpo_config import GRPOConfig

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"output_dir={out}", f"train.steps={steps}", "train.prompts_per_step=2", "eval.every=0",
                     "checkpoint.every=0", "log.tensorboard=false", "log.progress=false", "log.samples_every=0",
                     "algorithm.kl_coef=0.05", f"model.lora.r={rank}"]
        if rank:
            overrides.append("train.lr=1e-4")  # the usual LoRA rate; memory does not depend on it
        cfg = load_config(GRPOConfig, REPO / "recipes" / "quickstart.yaml", overrides)
        trainer = GRPOTrainer(cfg)
        built = peak_rss_mib()
        trainable, total = trainable_parameters(trainer.model)
        ref_copy = trainer.ref_model is not None and trainer.ref_model is not trainer.model
        peaks: dict[str, float] = {}
        phase_peaks(trainer, peaks)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        row = json.loads((Path(out) / "metrics.jsonl").read_text().splitlines()[-1])
    return {"rank": rank, "peak_rss_built_mib": built, "peak_rss_step_mib": max(peaks.values()),
            **{f"peak_rss_{k}_mib": v for k, v in peaks.items()}, "trainable": trainable,
            "total": total, "reference_copy": ref_copy, "train_s": seconds, "kl": row.get("actor/kl"),
            "reward_mean": row.get("reward/mean")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank of the LoRA setting (default 16)")
    parser.add_argument("--steps", type=int, default=1, help="training steps per setting (default 1)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.steps)))
        return
    print(f"{platform.node()} {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}, "
          f"SmolLM2-135M float32 CPU, kl_coef 0.05, {args.steps} step(s) of 2 prompts x 8 samples")
    for allocator, env in (("glibc default", {}), ("MALLOC_MMAP_THRESHOLD_=65536", {"MALLOC_MMAP_THRESHOLD_": "65536"})):
        print(f"\nallocator: {allocator}")
        report(run_settings(args, env))


def run_settings(args, env: dict[str, str]) -> dict[str, dict]:
    import os

    results = {}
    for name, rank in (("full fine-tuning", 0), (f"LoRA r={args.rank}", args.rank)):
        proc = subprocess.run([sys.executable, __file__, "--child", str(rank), "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True, env={**os.environ, **env})
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def report(results: dict[str, dict]) -> None:
    print(f"{'setting':<20} {'peak RSS built':>15} {'peak RSS step':>14} {'trainable':>12} {'reference':>16} {'train s':>8}")
    for name, r in results.items():
        ref = "second model" if r["reference_copy"] else "adapter off"
        print(f"{name:<20} {r['peak_rss_built_mib']:>11.0f} MiB {r['peak_rss_step_mib']:>10.0f} MiB "
              f"{r['trainable'] / 1e6:>9.2f} M {ref:>16} {r['train_s']:>8.1f}")
    print("peak RSS per phase (MiB): " + "; ".join(
        f"{name}: " + ", ".join(f"{k.removeprefix('peak_rss_').removesuffix('_mib')} {v:.0f}" for k, v in r.items()
                                if k.startswith("peak_rss_") and k not in ("peak_rss_built_mib", "peak_rss_step_mib"))
        for name, r in results.items()))
    full, lora = results.values()
    print(f"LoRA / full: peak RSS after building {lora['peak_rss_built_mib'] / full['peak_rss_built_mib']:.2f}, "
          f"after the step {lora['peak_rss_step_mib'] / full['peak_rss_step_mib']:.2f} "
          f"(saved {full['peak_rss_step_mib'] - lora['peak_rss_step_mib']:.0f} MiB); trainable parameters "
          f"{lora['trainable'] / full['trainable']:.4f}; step time {lora['train_s'] / full['train_s']:.2f}")


if __name__ == "__main__":
    main()

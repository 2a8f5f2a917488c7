"""One GRPO step, this trainer vs TRL's GRPOTrainer, in the same process and on the same data.

Setting (both sides): SmolLM2-135M-Instruct, 16 arithmetic prompts x 8 generations, 64 new
tokens, temperature 1.0, beta 0 (no reference model), one optimizer update per batch, the math
verifier as reward, CPU. Prints seconds/step of each (after one warm-up step) and the ratio.

Loss check: on one fixed batch (same token ids, same advantages) the loss of this trainer's
update (ppo_clip, token-mean) is compared with TRL's ``_compute_loss`` under
``loss_type="dapo"``; they must agree to fp tolerance.

    python3 benchmarks/grpo_step_vs_trl.py [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rl_reason.config import load_config  # noqa: E402
from rl_reason.trainers.grpo import GRPOTrainer  # noqa: E402
from rl_reason.trainers.grpo_config import GRPOConfig  # noqa: E402
from rl_reason.trainers.rewards import VerifierReward  # noqa: E402

PROMPTS, GENERATIONS, NEW_TOKENS, LR = 16, 8, 64, 1e-6


def ours_config(out: str, steps: int) -> GRPOConfig:
    return load_config(GRPOConfig, None, [
        f"output_dir={out}", "resume=never", "model.name=smollm2-135m", "data.train=arithmetic:train",
        "data.template=chat_boxed", f"rollout.n={GENERATIONS}", f"rollout.max_new_tokens={NEW_TOKENS}",
        "rollout.temperature=1.0", f"train.prompts_per_step={PROMPTS}", "train.mini_batches=1",
        "train.micro_batch_size=32", f"train.lr={LR}", f"train.steps={steps}", "algorithm.kl_coef=0",
        "algorithm.loss_agg_mode=token-mean", "checkpoint.every=0", "log.tensorboard=false", "log.progress=false",
        "log.samples_every=0", "reward.verifier_workers=1",
    ])


def run_ours(steps: int) -> tuple[float, GRPOTrainer]:
    with tempfile.TemporaryDirectory() as out:
        trainer = GRPOTrainer(ours_config(out, steps))
        trainer.save = lambda: None  # timing the step, not the final checkpoint write
        trainer.train()
        rows = [line for line in open(Path(out) / "metrics.jsonl")]
    import json

    times = [json.loads(r)["time/step"] for r in rows][1:]  # drop the warm-up step
    return sum(times) / len(times), trainer


def run_trl(steps: int, ours: GRPOTrainer):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    examples = ours.train_examples
    dataset = Dataset.from_dict({"prompt": ours.prompts, "answer": [ex.answer for ex in examples]})
    reward = VerifierReward(workers=1)
    by_answer = {ex.answer: ex for ex in examples}

    def math_reward(prompts, completions, answer, **_):
        return [s.reward for s in reward([by_answer[a] for a in answer], completions)]

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times, self._start = [], None

        def on_step_begin(self, args, state, control, **kw):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self._start)

    timer = StepTimes()
    model = copy.deepcopy(ours.model).train()
    args = TRLConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=PROMPTS * GENERATIONS, num_generations=GENERATIONS,
        max_completion_length=NEW_TOKENS, temperature=1.0, beta=0.0, num_iterations=1, loss_type="dapo",
        learning_rate=LR, max_steps=steps, use_cpu=True, report_to=[], logging_steps=1, save_strategy="no",
        gradient_accumulation_steps=1, bf16=False, seed=0, dataloader_num_workers=0,
    )
    trainer = TRLTrainer(model=model, processing_class=ours.tokenizer, reward_funcs=math_reward, args=args,
                         train_dataset=dataset, callbacks=[timer])
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    reward.close()
    return total, timer.times, trainer


def loss_check(ours: GRPOTrainer, trl_trainer) -> tuple[float, float]:
    """Both losses on one fixed batch: our update (lr 0, so nothing moves) vs TRL's dapo loss."""
    ours.step += 1
    groups, _ = ours.collect_groups()
    batch = ours.build_batch(groups)
    advantages = ours.advantages(batch)
    for group in ours.optimizer.param_groups:
        group["lr"] = 0.0
    our_loss = ours.update_policy(batch, None, None, advantages)["actor/loss"]

    P = batch.input_ids.shape[1] - batch.response_length
    completion_mask = batch.attention_mask[:, P:]
    inputs = {
        "prompt_ids": batch.input_ids[:, :P], "prompt_mask": batch.attention_mask[:, :P],
        "completion_ids": batch.input_ids[:, P:], "completion_mask": completion_mask,
        "advantages": advantages,  # (B, T); TRL accepts token-level advantages
        "num_items_in_batch": completion_mask.sum(),
    }
    # The same weights on both sides; eval mode makes TRL normalise by num_items_in_batch only.
    trl_trainer.model.load_state_dict(ours.model.state_dict())
    trl_trainer.model.eval()
    with torch.no_grad():
        trl_loss = float(trl_trainer._compute_loss(trl_trainer.model, inputs))
    return our_loss, trl_loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="steps per side; the first is a warm-up and not timed")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, torch {torch.__version__}")

    ours_s, ours = run_ours(args.steps)
    print(f"rl-reason: {ours_s:.2f} s/step", flush=True)
    total, step_times, trl_trainer = run_trl(args.steps, ours)
    trl_s = sum(step_times[1:]) / max(1, len(step_times) - 1)
    print(f"TRL GRPOTrainer: {trl_s:.2f} s/step (train() total {total:.1f} s for {args.steps} steps)", flush=True)
    print(f"speed-up: {trl_s / ours_s:.2f}x (target >= 2x)")

    our_loss, trl_loss = loss_check(ours, trl_trainer)
    diff = abs(our_loss - trl_loss)
    print(f"fixed-batch loss: rl-reason {our_loss:.8f}  TRL dapo {trl_loss:.8f}  |diff| {diff:.2e}")
    ok = diff <= 1e-5 * max(1.0, abs(trl_loss))
    print("loss match:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

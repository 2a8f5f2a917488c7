"""One GRPO step, this trainer vs TRL's GRPOTrainer, in the same process and on the same data.

Setting (both sides): SmolLM2-135M-Instruct, 16 arithmetic prompts x 8 generations, 64 new
tokens, temperature 1.0, beta 0 (no reference model), one optimizer update per batch, the math
verifier as reward, CPU. Prints seconds/step of each (after one warm-up step) and the ratio.
Our side runs once per ``--pack-tokens`` value (0: padded rows with the shared-prompt forward;
N > 0: padding-free rows of at most N tokens, each group's prompt packed once), on the same
seeded rollouts; TRL's runs once.

Loss check: on one fixed batch (same token ids, same advantages) the loss of this trainer's
update (ppo_clip, token-mean) is compared with TRL's ``_compute_loss`` under
``loss_type="dapo"``; they must agree to fp tolerance.

    python3 benchmarks/grpo_step_vs_trl.py [--steps 3] [--threads 2] [--check-prompts 16] [--pack-tokens 512 0]
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
from rl_reason.io import read_jsonl_records  # noqa: E402
from rl_reason.trainers.grpo import GRPOTrainer  # noqa: E402
from rl_reason.trainers.grpo_config import GRPOConfig  # noqa: E402
from rl_reason.trainers.rewards import VerifierReward  # noqa: E402

PROMPTS, GENERATIONS, NEW_TOKENS, LR = 16, 8, 64, 1e-6


def ours_config(out: str, steps: int, pack_tokens: int = 0) -> GRPOConfig:
    return load_config(GRPOConfig, None, [
        f"output_dir={out}", "resume=never", "model.name=smollm2-135m", "data.train=arithmetic:train",
        "data.template=chat_boxed", f"rollout.n={GENERATIONS}", f"rollout.max_new_tokens={NEW_TOKENS}",
        "rollout.temperature=1.0", f"train.prompts_per_step={PROMPTS}", "train.mini_batches=1",
        "train.micro_batch_size=32", f"train.lr={LR}", f"train.steps={steps}", "algorithm.kl_coef=0",
        "algorithm.loss_agg_mode=token-mean", "checkpoint.every=0", "log.tensorboard=false", "log.progress=false",
        "log.samples_every=0", "reward.verifier_workers=1", f"train.pack_tokens={pack_tokens}",
    ])


def build_trl(steps: int, ours: GRPOTrainer):
    """TRL's GRPOTrainer on the same prompts, reward, tokenizer and (a copy of the) weights."""
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
    args = TRLConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=PROMPTS * GENERATIONS, num_generations=GENERATIONS,
        max_completion_length=NEW_TOKENS, temperature=1.0, beta=0.0, num_iterations=1, loss_type="dapo",
        learning_rate=LR, max_steps=max(steps, 1), use_cpu=True, report_to=[], logging_steps=1, save_strategy="no",
        gradient_accumulation_steps=1, bf16=False, seed=0, dataloader_num_workers=0,
    )
    trainer = TRLTrainer(model=copy.deepcopy(ours.model).train(), processing_class=ours.tokenizer,
                         reward_funcs=math_reward, args=args, train_dataset=dataset, callbacks=[timer])
    return trainer, timer


def loss_check(ours: GRPOTrainer, trl_trainer, prompts: int) -> tuple[float, float]:
    """Both losses on one fixed batch: our update (lr 0, so nothing moves) vs TRL's dapo loss.

    Real rollouts of ``prompts`` prompts, with seeded random advantages and old log-probs
    perturbed off-policy, so the ratio, both clip sides and the token-mean all take part
    (verifier rewards on a handful of prompts are often all 0, which would compare 0 with 0).
    """
    ours.step += 1
    batch = ours.build_batch(ours.rollout_and_score(ours.sampler.take(prompts), 0))
    B = batch.input_ids.shape[0]
    gen = torch.Generator().manual_seed(0)
    advantages = torch.randn(B, 1, generator=gen) * batch.response_mask
    with torch.no_grad():
        logp = ours.logprobs(ours.model, batch, torch.arange(B))[0]
    old = (logp + 0.3 * torch.randn(logp.shape, generator=gen)) * batch.response_mask
    lrs = [group["lr"] for group in ours.train_engine.optimizer.param_groups]
    for group in ours.train_engine.optimizer.param_groups:
        group["lr"] = 0.0
    our_loss = ours.update_policy(batch, old, None, advantages)["actor/loss"]
    for group, lr in zip(ours.train_engine.optimizer.param_groups, lrs):
        group["lr"] = lr

    P = batch.input_ids.shape[1] - batch.response_length
    completion_mask = batch.attention_mask[:, P:]
    inputs = {
        "prompt_ids": batch.input_ids[:, :P], "prompt_mask": batch.attention_mask[:, :P],
        "completion_ids": batch.input_ids[:, P:], "completion_mask": completion_mask,
        "advantages": advantages,  # (B, T); TRL accepts token-level advantages
        "old_per_token_logps": old,
        "num_items_in_batch": completion_mask.sum(),
    }
    # The same weights on both sides; eval mode makes TRL normalise by num_items_in_batch only.
    trl_trainer.model.load_state_dict(ours.model.state_dict())
    trl_trainer.model.eval()
    with torch.no_grad():
        trl_loss = float(trl_trainer._compute_loss(trl_trainer.model, inputs))
    trl_trainer.model.train()
    return our_loss, trl_loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side, the first a warm-up (0: loss check only)")
    parser.add_argument("--check-prompts", type=int, default=PROMPTS, help="prompts (x 8 generations) in the loss-check batch")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--pack-tokens", type=int, nargs="+", default=[0],
                        help="train.pack_tokens values to time our step with (0 = padded rows)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, kernel {platform.release()}, torch {torch.__version__}")

    with tempfile.TemporaryDirectory() as out:
        ours = GRPOTrainer(ours_config(str(Path(out) / "check"), 1, args.pack_tokens[0]))
        trl_trainer, trl_timer = build_trl(args.steps, ours)
        # Loss check first, on the untrained weights both sides share.
        our_loss, trl_loss = loss_check(ours, trl_trainer, args.check_prompts)
        diff = abs(our_loss - trl_loss)
        ok = diff <= 1e-5 * max(1.0, abs(trl_loss))
        print(f"fixed-batch loss (pack_tokens={args.pack_tokens[0]}): rl-reason {our_loss:.8f}  TRL dapo "
              f"{trl_loss:.8f}  |diff| {diff:.2e}  match: {ok}", flush=True)
        if args.steps:
            ours_s = {}
            del ours
            for pack in args.pack_tokens:
                # A fresh trainer per value: the same seed, so the same prompts and rollouts.
                run_dir = Path(out) / f"pack{pack}"
                ours = GRPOTrainer(ours_config(str(run_dir), args.steps, pack))
                ours.save = lambda: None  # time the steps, not the final checkpoint write
                ours.train()
                rows = read_jsonl_records(run_dir / "metrics.jsonl")[1:]
                ours_s[pack] = sum(r["time/step"] for r in rows) / max(1, len(rows))
                update_s = sum(r["time/update"] for r in rows) / max(1, len(rows))
                print(f"rl-reason pack_tokens={pack}: {ours_s[pack]:.2f} s/step (update {update_s:.2f} s)", flush=True)
                del ours
            trl_trainer.train()
            trl_s = sum(trl_timer.times[1:]) / max(1, len(trl_timer.times) - 1)
            print(f"TRL GRPOTrainer: {trl_s:.2f} s/step")
            for pack, seconds in ours_s.items():
                print(f"speed-up pack_tokens={pack}: {trl_s / seconds:.2f}x (target >= 2x)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# Quality figures of the non-GRPO trainers on the quickstart task (docs/results.md):
# SmolLM2-135M-Instruct's own samples of arithmetic:train, graded by the math verifier, become
#   1. verifier-filtered pairs (rl-reason pairs),
#   2. a reward model trained on them (held-out pairwise accuracy, split by prompt),
#   3. PPO with that reward model as the only reward (does the RM score rise? the verifier score
#      is logged beside it),
#   4. DPO on the same pairs, then a second round sampled from the new policy (iterated DPO),
#      held-out greedy accuracy on 100 arithmetic:heldout problems after each round,
#   5. rejection-sampling SFT on the verified-correct samples, same held-out accuracy.
# Every stage reuses the first stage's samples where the recipe would draw the same ones
# (the eval harness resumes from samples.jsonl), so the sampling cost is paid once.
#
#   bash benchmarks/post_train_quality.sh [OUT_DIR]      (about an hour on 2 CPU cores: 63 min measured)
set -euo pipefail
OUT=${1:-runs/post_train}
cd "$(dirname "$0")/.."
RL=(python3 -m rl_reason)
mkdir -p "$OUT"
# Sampling settings shared by stages 1, 4 and 5 (the quickstart's: chat_boxed, T 0.8, 64 tokens).
SAMPLE=(limit=160 n=8 temperature=0.8 max_new_tokens=64)

echo "== 1. verifier-filtered pairs"
"${RL[@]}" pairs --model smollm2-135m --data arithmetic:train --limit 160 --n 8 --temperature 0.8 \
    --max-new-tokens 64 --max-pairs-per-prompt 2 --seed 1 --out "$OUT/pairs" --quiet

echo "== 2. reward model"
"${RL[@]}" train --config recipes/rm.yaml output_dir="$OUT/rm" pairs.data= data.train="$OUT/pairs/pairs.jsonl" \
    data.eval_fraction=0.25 train.steps=20 train.batch_size=8 train.micro_batch_size=8 train.lr=2e-5 \
    train.warmup_steps=2 eval_every=10 checkpoint.every=0 log.progress=false

echo "== 3. PPO with the trained reward model"
"${RL[@]}" train --config recipes/ppo_rm.yaml output_dir="$OUT/ppo" reward_model.path="$OUT/rm/final" \
    data.eval= rollout.n=4 rollout.temperature=0.8 rollout.max_new_tokens=64 train.prompts_per_step=4 \
    train.ppo_epochs=1 train.mini_batches=1 train.micro_batch_size=16 train.steps=12 train.lr=1e-5 \
    critic.lr=1e-5 checkpoint.every=0 log.progress=false

echo "== 4. DPO on the verifier-filtered pairs, two rounds"
mkdir -p "$OUT/dpo/iter_1/pairs"
cp "$OUT/pairs/samples.jsonl" "$OUT/dpo/iter_1/pairs/samples.jsonl"  # round 1 = stage 1's samples (seed 0 + 1)
"${RL[@]}" train --config recipes/dpo_verified.yaml output_dir="$OUT/dpo" iterations=2 \
    "${SAMPLE[@]/#/pairs.}" data.eval_fraction=0.1 train.steps=15 train.batch_size=8 train.micro_batch_size=8 \
    train.lr=1e-5 eval_every=5 task_eval.limit=100 task_eval.max_new_tokens=64 log.progress=false

echo "== 5. rejection-sampling SFT"
mkdir -p "$OUT/sft/rejection_sampling"
cp "$OUT/pairs/samples.jsonl" "$OUT/sft/rejection_sampling/samples.jsonl"  # the same samples (seed 1)
"${RL[@]}" train --config recipes/sft.yaml output_dir="$OUT/sft" seed=1 "${SAMPLE[@]/#/rejection_sampling.}" \
    train.steps=20 train.batch_size=8 train.micro_batch_size=8 train.lr=1e-5 task_eval.limit=100 \
    task_eval.max_new_tokens=64 log.progress=false

echo "== summary"
python3 - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = lambda p: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]  # noqa: E731
pairs = rows(out / "pairs" / "pairs.jsonl")
samples = rows(out / "pairs" / "samples.jsonl")
print(f"pairs: {len(pairs)} from {len({p['id'] for p in pairs})} prompts; "
      f"{sum(s['correct'] for s in samples)}/{len(samples)} samples correct")
for r in rows(out / "rm" / "metrics.jsonl"):
    if "eval/accuracy" in r:
        print(f"RM step {r['step']:>3}: held-out pairwise accuracy {r['eval/accuracy']:.3f} "
              f"({int(r['eval/pairs'])} pairs), margin {r['eval/margin']:+.3f}")
for r in rows(out / "ppo" / "metrics.jsonl"):
    if "rm/score_mean" in r:
        print(f"PPO step {r['step']:>3}: RM score {r['rm/score_mean']:+.4f} (std {r['rm/score_std']:.4f})  "
              f"verifier {r['verifier/score_mean']:.3f}  KL {r.get('ppo/kl_in_reward', float('nan')):+.4f}")
for name in ("dpo", "sft"):
    for r in rows(out / name / "task_eval.jsonl"):
        print(f"{name.upper()} {r['stage']:>7}: held-out greedy pass@1 {r['task/pass@1']:.2f}")
EOF

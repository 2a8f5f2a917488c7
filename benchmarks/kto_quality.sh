#!/usr/bin/env bash
# KTO vs DPO on the same verified samples of the quickstart task (docs/results.md):
# SmolLM2-135M-Instruct samples arithmetic:train (64 prompts x 8, T 0.8, 64 tokens; seed 1),
# the math verifier grades them, and
#   1. every distinct answer becomes a KTO row labelled by correctness (rl-reason pairs --unpaired),
#      trained with trainer: kto, desirable_weight = n_undesirable / n_desirable (the paper's
#      balance, ratio 1);
#   2. the prompts with both a correct and an incorrect answer become DPO pairs from the SAME
#      samples (rl-reason pairs resumes from samples.jsonl), trained with trainer: dpo;
# same steps, batch, lr and beta; held-out greedy pass@1 on 100 arithmetic:heldout problems
# before and after each (task_eval.jsonl; the "before" figure is measured once and copied,
# since the start model and greedy decoding are the same).
#
#   bash benchmarks/kto_quality.sh [OUT_DIR]
# Cost: 512 samples, two training runs of 15 steps, three greedy evals of 100 problems; on the
# 2-core VM with other jobs running, the first stage alone took 12 minutes (docs/results.md).
set -euo pipefail
OUT=${1:-runs/kto_quality}
cd "$(dirname "$0")/.."
RL=(python3 -m rl_reason)
mkdir -p "$OUT"
PAIRS=(--model smollm2-135m --data arithmetic:train --limit 64 --n 8 --temperature 0.8 --max-new-tokens 64 --seed 1
       --out "$OUT/samples" --quiet)
TRAIN=(train.steps=15 train.batch_size=8 train.micro_batch_size=8 train.lr=1e-5 eval_every=5 task_eval.limit=100
       task_eval.max_new_tokens=64 log.progress=false pairs.data= data.eval_fraction=0.1 iterations=1)

echo "== samples -> unpaired rows and pairs"
"${RL[@]}" pairs "${PAIRS[@]}" --unpaired
"${RL[@]}" pairs "${PAIRS[@]}" --max-pairs-per-prompt 2
W=$(python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; g=sum(x['label'] for x in r); print(f'{(len(r)-g)/max(g,1):.4g}')" "$OUT/samples/unpaired.jsonl")
echo "desirable_weight=$W"

echo "== KTO"
"${RL[@]}" train --config recipes/kto_verified.yaml output_dir="$OUT/kto" data.train="$OUT/samples/unpaired.jsonl" \
    loss.desirable_weight="$W" "${TRAIN[@]}"

echo "== DPO on the same samples"
mkdir -p "$OUT/dpo"
grep '"before"' "$OUT/kto/task_eval.jsonl" > "$OUT/dpo/task_eval.jsonl"
"${RL[@]}" train --config recipes/dpo_verified.yaml output_dir="$OUT/dpo" data.train="$OUT/samples/pairs.jsonl" \
    "${TRAIN[@]}"

echo "== summary"
for run in kto dpo; do echo "$run: $(tr '\n' ' ' < "$OUT/$run/task_eval.jsonl")"; done

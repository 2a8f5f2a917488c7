#!/usr/bin/env bash
# Process reward model on the quickstart task (docs/results.md): SmolLM2-135M-Instruct
#   1. Monte-Carlo step labels of its own arithmetic:train solutions (rl-reason prm-label: 2 solutions
#      per prompt with the quickstart's prompt and sampling (chat_boxed_system, T 0.5, 128 tokens), cut
#      into sentences (separator ". ": most of its answers are one line), 2 continuations after each
#      step, a step is good when one reaches a verified answer);
#   2. a PRM trained on them (recipes/prm.yaml; 20% of the prompts held out: eval/step_accuracy,
#      eval/balanced_accuracy and eval/auroc on their steps);
#   3. best-of-8 on arithmetic:heldout: 8 samples per problem (same prompt and sampling), pass@1, maj@8,
#      pass@8 and the PRM's pick (rerank@8) with the min and the last step score; then per response
#      the score's ROC AUC against correctness and the pick's paired gain (benchmarks/rerank_analysis.py).
#
#   bash benchmarks/prm_quality.sh [OUT_DIR] [LABEL_PROMPTS] [EVAL_PROBLEMS] [PRM_STEPS]
# Labels (steps.jsonl) and eval samples already in OUT_DIR are reused; the PRM is retrained.
set -euo pipefail
OUT=${1:-runs/prm_quality}
LABEL_PROMPTS=${2:-30}
EVAL_PROBLEMS=${3:-50}
PRM_STEPS=${4:-100}
cd "$(dirname "$0")/.."
RL=(python3 -m rl_reason)
SAMPLING=(--template chat_boxed_system --temperature 0.5 --max-new-tokens 128)
EVAL=(eval --model smollm2-135m --suite arithmetic:heldout --limit "$EVAL_PROBLEMS" --n 8 --k 1,8 --top-p 1.0
      "${SAMPLING[@]}" --device cpu --out "$OUT/eval" --rerank "$OUT/prm/final")
mkdir -p "$OUT"
echo "== labels"; date -u
if [ -s "$OUT/labels/steps.jsonl" ]; then echo "reusing $OUT/labels/steps.jsonl"; else
"${RL[@]}" prm-label --model smollm2-135m --data arithmetic:train --limit "$LABEL_PROMPTS" --n 2 --k 2 --max-steps 4 \
    "${SAMPLING[@]}" --separator ". " --out "$OUT/labels" --quiet
fi
echo "== PRM"; date -u
"${RL[@]}" train --config recipes/prm.yaml output_dir="$OUT/prm" data.train="$OUT/labels/steps.jsonl" data.separator=". " train.steps="$PRM_STEPS" \
    eval_every=25 checkpoint.every=0 log.progress=false
echo "== best-of-8"; date -u
for AGG in min last; do   # the second run resumes the samples; only the PRM scores again
  "${RL[@]}" "${EVAL[@]}" --rerank-aggregation "$AGG"
  cp "$OUT/eval/summary.json" "$OUT/eval/summary_$AGG.json"
  echo "-- rerank by the $AGG step score"; python3 benchmarks/rerank_analysis.py "$OUT/eval"
done
date -u

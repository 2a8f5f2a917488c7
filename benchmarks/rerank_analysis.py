"""Best-of-n through a reward model, looked at per response and per problem.

    python3 benchmarks/rerank_analysis.py EVAL_DIR

reads ``EVAL_DIR/samples.jsonl`` (graded samples of ``rl-reason eval``) and
``EVAL_DIR/rerank_scores.jsonl`` (its ``--rerank`` scores) and prints: the ROC AUC of the score
against verified correctness over all responses (and of "shorter is better" as a baseline), the
accuracy of the reranker's pick, of the shortest answer and of a random sample (pass@1), and the
pick's gain over a random sample paired per problem with a bootstrap 95% CI.
"""

from __future__ import annotations

import argparse
import collections
import random
from pathlib import Path

from rl_reason.eval.metrics import roc_auc
from rl_reason.io import read_jsonl_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="output folder of rl-reason eval --rerank")
    parser.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples of the problems")
    args = parser.parse_args()
    samples = {(r["suite"], r["id"], r["sample"]): r for r in read_jsonl_records(args.eval_dir / "samples.jsonl")}
    scores = {(r["suite"], r["id"], r["sample"]): r["score"]
              for r in read_jsonl_records(args.eval_dir / "rerank_scores.jsonl")}
    keys = sorted(scores)
    correct = [bool(samples[k]["correct"]) for k in keys]
    print(f"responses: {len(keys)}, correct: {sum(correct)}")
    print(f"ROC AUC of the score vs correctness: {roc_auc([scores[k] for k in keys], correct):.3f}")
    print(f"ROC AUC of -length (shorter is better): {roc_auc([-samples[k]['tokens'] for k in keys], correct):.3f}")
    problems = collections.defaultdict(list)
    for k in keys:
        problems[k[:2]].append(k)
    # the harness's rule: highest score, the earliest sample on a tie
    pick = {p: samples[max(ks, key=lambda k: (scores[k], -k[2]))]["correct"] for p, ks in problems.items()}
    shortest = {p: samples[min(ks, key=lambda k: (samples[k]["tokens"], k[2]))]["correct"] for p, ks in problems.items()}
    mean = {p: sum(samples[k]["correct"] for k in ks) / len(ks) for p, ks in problems.items()}
    n = len(problems)
    print(f"problems: {n}; reranker's pick {sum(pick.values()) / n:.3f}, shortest answer "
          f"{sum(shortest.values()) / n:.3f}, random sample (pass@1) {sum(mean.values()) / n:.3f}")
    gain = [pick[p] - mean[p] for p in problems]
    rng = random.Random(0)
    boot = sorted(sum(rng.choice(gain) for _ in gain) / n for _ in range(args.resamples))
    lo, hi = boot[int(0.025 * args.resamples)], boot[int(0.975 * args.resamples) - 1]
    print(f"pick minus pass@1, paired over problems: {sum(gain) / n:+.3f} (bootstrap 95% CI {lo:+.3f} to {hi:+.3f})")


if __name__ == "__main__":
    main()

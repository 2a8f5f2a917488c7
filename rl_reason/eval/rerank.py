"""Best-of-n by a scorer (a process reward model): per problem, the sample the scorer ranks
highest is the answer, and the suite's accuracy is the share of problems whose pick is correct.

Reported beside the suite's pass@1 (a single sample), maj@n (majority vote over the extracted
answers) and pass@n (an oracle that always picks a correct sample when there is one), so a
reranker is judged against both the free baseline and the ceiling. Torch-free: the scores come in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rl_reason.eval.metrics import mean_with_ci
from rl_reason.eval.summary import group_by_problem


def best_of_n(records: Sequence[Mapping[str, Any]], scores: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``records`` graded samples (``id``, ``sample``, ``correct``) and ``scores[i]`` the score of
    ``records[i]``. Per problem the highest score wins, ties going to the lowest sample index.
    Returns ``{"accuracy": {"mean", "ci95"}, "num_problems", "picked": {id: sample}}``."""
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} scores")
    score_of = {(str(r["id"]), int(r["sample"])): float(s) for r, s in zip(records, scores)}
    picked, hits = {}, []
    for pid, group in sorted(group_by_problem(records).items()):
        best = max(group, key=lambda r: (score_of[(str(pid), int(r["sample"]))], -int(r["sample"])))
        picked[pid] = int(best["sample"])
        hits.append(float(bool(best["correct"])))
    return {"accuracy": mean_with_ci(hits, seed=seed), "num_problems": len(hits), "picked": picked}

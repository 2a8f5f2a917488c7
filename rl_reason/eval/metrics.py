"""Pure metric functions for sampled evaluation: pass@k, maj@k, avg@n, bootstrap CIs, ROC AUC.

Every metric is computed per problem from its ``n`` graded samples and then averaged over
problems; confidence intervals resample problems (not samples), because problems are the
unit that varies between benchmark draws.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, Codex).

    pass@k = 1 - C(n-c, k) / C(n, k): the probability that a random size-``k`` subset of the
    ``n`` samples holds at least one correct one. Taking "best of the first k" instead is
    biased (high variance, and low when k < n). Computed as a product, which is exact for
    large ``n`` where the binomials overflow floats.
    """
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError(f"pass_at_k needs integers, got n={n!r}, c={c!r}, k={k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if k > n:
        raise ValueError(f"cannot estimate pass@{k} from {n} samples (k > n)")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_answer(answers: Sequence[str | None]) -> int | None:
    """Index of the sample whose answer wins the vote, or ``None`` when no sample has one.

    Tie rule: among the answers with the most votes, the one whose FIRST occurrence comes
    earliest in sample order wins. Samples without an answer (``None``) do not vote.
    Answers are compared as strings after stripping whitespace (the verifier's extracted
    answer), so ``"1/2"`` and ``"0.5"`` are different votes.
    """
    keys = [None if a is None else "".join(str(a).split()) for a in answers]
    votes = Counter(k for k in keys if k)
    if not votes:
        return None
    top = max(votes.values())
    for i, key in enumerate(keys):
        if key and votes[key] == top:
            return i
    raise AssertionError("unreachable: a top-voted key always occurs")


def maj_at_k(answers: Sequence[str | None], correct_flags: Sequence[bool], k: int) -> float:
    """maj@k of one problem: 1.0 if the majority answer of the FIRST ``k`` samples is correct.

    Using the first k samples (in sample-index order) keeps the metric deterministic and
    equal to what a k-sample run would report; see ``majority_answer`` for ties.
    """
    if len(answers) != len(correct_flags):
        raise ValueError(f"{len(answers)} answers but {len(correct_flags)} correctness flags")
    if k < 1 or k > len(answers):
        raise ValueError(f"cannot compute maj@{k} from {len(answers)} samples")
    winner = majority_answer(answers[:k])
    return float(bool(correct_flags[winner])) if winner is not None else 0.0


def avg_at_n(scores: Sequence[float]) -> float:
    """avg@n of one problem: the mean score over its ``n`` samples (the usual "pass@1 from n")."""
    if not len(scores):
        raise ValueError("avg@n needs at least one sample")
    return float(np.mean(np.asarray(scores, dtype=float)))


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The chance that a random positive scores above a random negative (ties count half).

    Threshold-free, so a classifier that ranks well but whose scores all sit on one side of 0.5
    (a process reward model trained on mostly-bad steps) is not mistaken for one that guesses.
    """
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.shape[0]} scores but {labels.shape[0]} labels")
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        raise ValueError("ROC AUC needs at least one positive and one negative")
    above = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(above / (len(pos) * len(neg)))


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem ``values``.

    Deterministic for a given ``seed``. One value gives a zero-width interval at that value.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_resamples, arr.size))
    means = arr[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mean_with_ci(values: Sequence[float], seed: int = 0) -> dict[str, float | list[float]]:
    """``{"mean": ..., "ci95": [lo, hi]}`` for per-problem values."""
    lo, hi = bootstrap_ci(values, seed=seed)
    return {"mean": float(np.mean(np.asarray(values, dtype=float))), "ci95": [lo, hi]}

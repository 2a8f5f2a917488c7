"""Is there a learning signal? Group-relative RL learns only from groups whose rewards differ.

One place measures it and says why not, in words: the trainer's per-step metrics and its one-off
warning, and ``rl-reason train --validate --probe N`` before a run, all call ``signal_stats`` and
``diagnose``. Torch-free (lists of rewards, verifier statuses and finish reasons).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A step whose share of groups with reward variance is at most this has "nearly no signal".
DEFAULT_MIN_SIGNAL = 0.1


@dataclass(frozen=True)
class GroupOutcome:
    """One prompt's sampled completions: rewards, verifier statuses, finish reasons (``length`` = cut)."""

    rewards: Sequence[float]
    statuses: Sequence[str]
    finish_reasons: Sequence[str | None]


@dataclass(frozen=True)
class SignalStats:
    groups: int
    groups_with_signal: int  # reward std > eps within the group
    samples: int
    rewarded: int  # reward > 0
    correct: int
    truncated: int  # stopped at max_new_tokens
    no_answer: int  # the verifier found no answer to grade
    wrong: int  # an answer was found and it was wrong
    all_same_nonzero: int  # groups whose samples all got the same non-zero reward (too easy / a constant bonus)

    @property
    def signal_frac(self) -> float:
        return self.groups_with_signal / self.groups if self.groups else 0.0

    def frac(self, count: int) -> float:
        return count / self.samples if self.samples else 0.0

    def metrics(self) -> dict[str, float]:
        """The per-step metrics (``signal/*``)."""
        return {
            "signal/groups_with_variance": self.signal_frac,
            "signal/samples_with_reward": self.frac(self.rewarded),
            "signal/truncated": self.frac(self.truncated),
            "signal/no_answer": self.frac(self.no_answer),
            "signal/wrong": self.frac(self.wrong),
        }


def signal_stats(groups: Sequence[GroupOutcome], eps: float = 1e-6) -> SignalStats:
    with_signal = same_nonzero = 0
    for g in groups:
        spread = float(np.std(g.rewards)) if len(g.rewards) else 0.0
        with_signal += spread > eps
        same_nonzero += spread <= eps and len(g.rewards) > 0 and abs(float(g.rewards[0])) > eps
    rewards = [r for g in groups for r in g.rewards]
    statuses = [s for g in groups for s in g.statuses]
    return SignalStats(
        groups=len(groups),
        groups_with_signal=with_signal,
        samples=len(rewards),
        rewarded=sum(r > 0 for r in rewards),
        correct=statuses.count("correct"),
        truncated=sum(f == "length" for g in groups for f in g.finish_reasons),
        no_answer=statuses.count("no_answer"),
        wrong=statuses.count("wrong"),
        all_same_nonzero=same_nonzero,
    )


def expected_signal_rate(accuracy: float, n: int) -> float:
    """Share of groups of ``n`` with both a right and a wrong answer when each sample is right
    with probability ``accuracy`` independently: 1 - p^n - (1-p)^n."""
    return 1.0 - accuracy**n - (1.0 - accuracy) ** n


def diagnose(stats: SignalStats, max_new_tokens: int, n: int) -> list[str]:
    """Plain-words lines: how much signal there is, the likely causes measured from ``stats``,
    and what to try. The first line is the headline."""

    def pct(count: int) -> str:
        return f"{100 * stats.frac(count):.0f}%"

    headline = (
        f"learning signal: {stats.groups_with_signal} of {stats.groups} groups "
        f"({100 * stats.signal_frac:.0f}%) have rewards that differ; {pct(stats.rewarded)} of "
        f"{stats.samples} samples got any reward ({pct(stats.correct)} correct). Groups whose "
        "samples all get the same reward give the policy no gradient."
    )
    lines = [headline]
    acc = stats.frac(stats.correct)
    if 0 < acc < 1:
        lines.append(
            f"at this accuracy, groups of {n} would have signal {100 * expected_signal_rate(acc, n):.0f}% of the "
            f"time; raising rollout.n to {2 * n} would make it {100 * expected_signal_rate(acc, 2 * n):.0f}%."
        )
    causes: list[str] = []
    if stats.frac(stats.truncated) >= 0.3:
        causes.append(
            f"{pct(stats.truncated)} of the answers were cut at rollout.max_new_tokens={max_new_tokens} "
            f"before they finished: raise rollout.max_new_tokens (e.g. {2 * max_new_tokens})."
        )
    if stats.frac(stats.no_answer) >= 0.3:
        causes.append(
            f"{pct(stats.no_answer)} of the answers had no answer the verifier could extract: use a prompt "
            "template that shows the answer format (data.template), or first teach the format with "
            "rejection-sampling SFT on the model's own correct answers (recipes/sft.yaml)."
        )
    if stats.correct == 0 and stats.wrong:
        causes.append(
            f"every answer given was wrong ({pct(stats.wrong)} of samples answered, none correctly): the task "
            "is too hard for this model as sampled. Try easier problems first (a curriculum), more samples per "
            "prompt (rollout.n), or dapo.dynamic_sampling=true to skip groups without signal."
        )
    if stats.all_same_nonzero and stats.all_same_nonzero >= stats.groups - stats.groups_with_signal > 0:
        causes.append(
            f"{stats.all_same_nonzero} groups gave every sample the same non-zero reward: the task is too easy, "
            "or a constant bonus (reward.format_weight) dominates the reward."
        )
    if not causes and stats.signal_frac <= DEFAULT_MIN_SIGNAL:
        causes.append("no single cause dominates; look at RUN_DIR/samples.jsonl (log.samples_every).")
    return lines + [f"likely cause: {c}" for c in causes]


class SignalMonitor:
    """Watches the last ``patience`` steps; once their pooled share of groups with signal is at
    most ``min_signal``, returns a warning (once). Pooled, not per step: with a few groups per
    step, one lucky group every few steps must not hide a run that is barely learning."""

    def __init__(self, patience: int, min_signal: float = DEFAULT_MIN_SIGNAL):
        self.patience = patience
        self.min_signal = min_signal
        self.warned = False
        self._window: deque[SignalStats] = deque(maxlen=max(patience, 1))

    def update(self, stats: SignalStats, max_new_tokens: int, n: int) -> str | None:
        if self.warned or self.patience <= 0:
            return None
        self._window.append(stats)
        if len(self._window) < self.patience:
            return None
        pooled = SignalStats(*(sum(getattr(s, f) for s in self._window) for f in SignalStats.__dataclass_fields__))
        if pooled.signal_frac > self.min_signal:
            return None
        self.warned = True
        head = (
            f"WARNING: almost no learning signal in the last {self.patience} steps (at most "
            f"{100 * self.min_signal:.0f}% of groups had rewards that differ); the policy is barely being updated."
        )
        return "\n".join([head, *(f"  {line}" for line in diagnose(pooled, max_new_tokens, n))])

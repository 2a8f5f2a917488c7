"""One PNG per eval run: pass@k curves with 95% CIs under the full extraction chain (solid) and
under strict grading, committed answers only (dashed), the share of answers each extraction rule
found, and avg@n bars per level/subject/year."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rl_reason.io import atomic_write_bytes  # noqa: E402


def plot_summaries(summaries: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """Draw ``summaries`` (suite name -> summary dict) into ``path`` (PNG, written atomically)."""
    bars = [(suite, key, groups) for suite, s in summaries.items() for key, groups in s["breakdown"].items() if len(groups) > 1]
    shares = {suite: s["extracted_by"] for suite, s in summaries.items() if s.get("extracted_by")}
    rows = 1 + bool(shares) + len(bars)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.6 * rows), squeeze=False)
    ax = axes[0][0]
    for suite, s in summaries.items():
        ks = s["ks"]
        if not ks:
            continue
        means = [s["metrics"][f"pass@{k}"]["mean"] for k in ks]
        lows = [m - s["metrics"][f"pass@{k}"]["ci95"][0] for k, m in zip(ks, means)]
        highs = [s["metrics"][f"pass@{k}"]["ci95"][1] - m for k, m in zip(ks, means)]
        line = ax.errorbar(ks, means, yerr=[lows, highs], marker="o", capsize=3, label=f"{suite} (full chain)")
        if s.get("strict"):
            strict = [s["strict"]["metrics"][f"pass@{k}"]["mean"] for k in ks]
            ax.plot(ks, strict, linestyle="--", marker="x", color=line[0].get_color(), label=f"{suite} (strict)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (unbiased, 95% CI)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    if shares:
        _plot_rule_shares(axes[1][0], shares)
    for (suite, key, groups), row in zip(bars, axes[1 + bool(shares) :]):
        ax = row[0]
        names = list(groups)
        ax.bar(range(len(names)), [groups[g]["avg@n"] for g in names])
        ax.set_xticks(range(len(names)), [f"{g}\n(n={groups[g]['count']})" for g in names], fontsize=7, rotation=30, ha="right")
        ax.set_ylabel("avg@n")
        ax.set_ylim(0, 1)
        ax.set_title(f"{suite}: avg@n by {key}")
    fig.tight_layout()
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _plot_rule_shares(ax, shares: Mapping[str, Mapping[str, float]]) -> None:
    """Grouped bars: per extraction rule, the share of each suite's samples it answered."""
    rules = sorted({rule for by in shares.values() for rule in by})
    width = 0.8 / len(shares)
    for i, (suite, by) in enumerate(shares.items()):
        ax.bar([r + i * width for r in range(len(rules))], [by.get(rule, 0.0) for rule in rules], width, label=suite)
    ax.set_xticks([r + 0.4 - width / 2 for r in range(len(rules))], rules, fontsize=8)
    ax.set_ylabel("share of samples")
    ax.set_ylim(0, 1)
    ax.set_title("answer found by (extraction rule; none = no answer)")
    ax.legend()

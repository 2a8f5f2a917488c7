"""``rl-reason report RUN_DIR``: PNG curves of a run's metrics.jsonl (reward, accuracy, length,
KL, entropy, clip fraction, eval) next to the metrics, plus a one-line summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rl_reason.cli import checks
from rl_reason.cli.checks import UserError

# (title, metric names drawn on one panel); panels whose metrics never appear are skipped.
PANELS: list[tuple[str, list[str]]] = [
    ("reward", ["reward/mean"]),
    ("train accuracy", ["reward/accuracy"]),
    ("held-out eval", []),  # filled with every eval/* metric found, except those drawn apart
    ("held-out response tokens", ["eval/mean_tokens"]),  # tens of tokens: would flatten 0-1 rates
    ("verifier statuses (train)", []),  # every verifier/<status> share found
    ("verifier statuses (held-out)", []),  # every eval/status/<status> share found
    ("response length", ["response/length_mean", "response/length_max"]),
    ("truncated fraction", ["response/clipped_frac"]),
    ("KL", ["actor/kl", "mismatch/kl_k3"]),
    ("entropy", ["actor/entropy"]),
    ("clip fraction", ["actor/clip_frac", "actor/clipfrac", "actor/clip_frac_low", "actor/clip_frac_high"]),
    ("grad norm", ["actor/grad_norm"]),
    ("seconds per step", ["time/step"]),
]


def load_metrics(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}``; the last row of a step wins; bad lines are reported."""
    from rl_reason.io import JsonlError, read_jsonl

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a training run folder?")
    by_step: dict[int, dict[str, float]] = {}
    for _, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            print(f"warning: skipping {row}", file=sys.stderr)
            continue
        by_step.setdefault(int(row.get("step", 0)), {}).update(row)
    series: dict[str, list[tuple[int, float]]] = {}
    for step in sorted(by_step):
        for k, v in by_step[step].items():
            if k != "step" and isinstance(v, (int, float)):
                series.setdefault(k, []).append((step, float(v)))
    return series


def draw(run_dir: Path, out: Path, series: dict[str, list[tuple[int, float]]]) -> list[str]:
    """Write the panels of ``series`` (``load_metrics``) to ``out`` (PNG); returns the titles drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apart = {n for _, names in PANELS for n in names}
    found = {
        "held-out eval": sorted(k for k in series if k.startswith("eval/") and not k.startswith("eval/status/") and k not in apart),
        "verifier statuses (train)": sorted(k for k in series if k.startswith("verifier/")),
        "verifier statuses (held-out)": sorted(k for k in series if k.startswith("eval/status/")),
    }
    panels = [(t, found.get(t, names)) for t, names in PANELS]
    panels = [(t, [n for n in names if n in series]) for t, names in panels]
    panels = [(t, names) for t, names in panels if names]
    if not panels:
        raise ValueError(f"{run_dir}/metrics.jsonl has no known metrics to plot")
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, names) in zip(axes.flat, panels):
        for name in names:
            steps, values = zip(*series[name])
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=name)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return [t for t, _ in panels]


def handle(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"RUN_DIR {run_dir}: no such folder")
    out = checks.output_file(args.out, "--out") if args.out else run_dir / "curves.png"
    try:
        series = load_metrics(run_dir)  # once: its bad-line warnings are printed once
        titles = draw(run_dir, out, series)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    print(f"wrote {out} ({', '.join(titles)})")
    for name in [k for k in series if k.startswith("eval/") and not k.startswith("eval/status/")] + ["reward/mean"]:
        if name in series:
            (s0, v0), (s1, v1) = series[name][0], series[name][-1]
            print(f"  {name}: {v0:.4f} (step {s0}) -> {v1:.4f} (step {s1})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="plot a training run's metrics.jsonl as PNG curves",
        description="Draw reward, accuracy, response length, KL, entropy, clip fraction and held-out eval "
        "curves from RUN_DIR/metrics.jsonl into one PNG, and print first/last values.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (the config's output_dir)")
    parser.add_argument("--out", default="", help="PNG path (default RUN_DIR/curves.png)")
    parser.set_defaults(func=handle)

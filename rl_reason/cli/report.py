"""``rl-reason report RUN_DIR``: PNG curves of a run's metrics.jsonl (reward, accuracy, learning
signal, length, KL, entropy, clip fraction, eval) next to the metrics, and a table of the held-out
evals: accuracy under every grader the eval logged (full chain and strict, when both are there)
beside the share of answers with nothing to grade, so a gain that is only the answer format shows."""

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
    ("learning signal", ["signal/groups_with_variance", "signal/samples_with_reward"]),
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


def eval_table(series: dict[str, list[tuple[int, float]]]) -> list[str]:
    """Rows of the held-out eval per eval step: accuracy columns (every ``eval/pass@k`` and any
    strict-grader counterpart) first, then the no-answer and truncated shares, then the rest."""
    names = [k for k in series if k.startswith("eval/")]
    if not names:
        return []

    def order(name: str) -> tuple[int, str]:
        short = name.removeprefix("eval/")
        rank = 0 if "pass@" in short else 1 if "no_answer" in short else 2 if "truncated" in short else 3
        return rank, short

    names.sort(key=order)
    values = {name: dict(series[name]) for name in names}
    steps = sorted({s for name in names for s in values[name]})
    header = ["step", *(n.removeprefix("eval/") for n in names)]
    rows = [[str(step), *(f"{values[n][step]:.3f}" if step in values[n] else "-" for n in names)] for step in steps]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]


def regrade_evals(run_dir: Path, workers: int = 1) -> dict[int, dict[str, float]]:
    """Grade each saved held-out eval (``RUN_DIR/eval/step_N/samples.jsonl``) again under both
    answer formats: ``full`` (the extraction chain) and ``strict`` (committed answers only).

    Per step: ``pass@1`` and ``no_answer`` share under each (means over all samples; with one
    greedy sample per problem these are pass@1). The gold answers come from the run's
    ``config.yaml`` (``data.eval``, ``data.eval_limit``, ``data.data_dir``), so a run evaluated
    with an older grader can be read with today's.
    """
    import yaml

    from rl_reason.data_pipelines import load_dataset
    from rl_reason.eval.grader import Grader
    from rl_reason.eval.harness import read_samples

    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: --regrade needs the run's resolved config")
    data = (yaml.safe_load(config_path.read_text()) or {}).get("data", {})
    if not data.get("eval"):
        raise ValueError(f"{config_path}: data.eval is empty, the run has no held-out eval to regrade")
    examples = {ex.id: ex for ex in load_dataset(data["eval"], data_dir=data.get("data_dir") or None,
                                                 limit=data.get("eval_limit") or None) if ex.answer is not None}
    out: dict[int, dict[str, float]] = {}
    # The eval harness's own grader, which grades every record under both answer formats.
    with Grader(workers=workers) as grader:
        for folder in sorted((run_dir / "eval").glob("step_*")):
            records = grader.grade([r for r in read_samples(folder / "samples.jsonl") if r["id"] in examples], examples)
            if not records:
                continue
            n = len(records)
            out[int(folder.name.removeprefix("step_"))] = {
                "full/pass@1": sum(r["correct"] for r in records) / n,
                "strict/pass@1": sum(r["correct_strict"] for r in records) / n,
                "full/no_answer": sum(r["status"] == "no_answer" for r in records) / n,
                "strict/no_answer": sum(r["status_strict"] == "no_answer" for r in records) / n,
                "truncated": sum(r.get("finish_reason") == "length" for r in records) / n,
            }
    return out


def warm_start_line(run_dir: Path) -> str:
    """What the rejection-sampling warm start trained on (empty when the run had none): step 0's
    eval is of the warm-started model, so a reader needs to know it was there."""
    from rl_reason.io import read_jsonl_records

    folder = run_dir / "warm_start" / "rejection_sampling"
    if not (folder / "sft.jsonl").is_file():
        return ""
    kept = sum(1 for line in (folder / "sft.jsonl").open() if line.strip())
    samples = read_jsonl_records(folder / "samples.jsonl")
    prompts = len({s["id"] for s in samples})
    line = (f"warm start: fine-tuned on {kept} distinct verified-correct answers out of {len(samples)} samples of "
            f"{prompts} prompts before RL (step 0 is the warm-started model; {folder})")
    task_eval = run_dir / "warm_start" / "task_eval.jsonl"
    rows = read_jsonl_records(task_eval) if task_eval.is_file() else []
    base = [r for r in rows if r.get("stage") == "before"]
    if base and "task/strict/pass@1" in base[0]:
        b = base[0]
        line += (f"\n  base model before the warm start: full {b['task/pass@1']:.1%}, strict {b['task/strict/pass@1']:.1%},"
                 f" no committed answer (strict) {b.get('task/strict/no_answer', float('nan')):.1%}")
    return line


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
    table = eval_table(series)
    if table:
        print("held-out eval per step (accuracy by grader; no_answer = share with nothing to grade):")
        print("\n".join(f"  {line}" for line in table))
    warm = warm_start_line(run_dir)
    if warm:
        print(warm)
    for name in [k for k in series if k.startswith("eval/") and not k.startswith("eval/status/")] + [
        "reward/mean", "signal/groups_with_variance"]:
        if name in series:
            (s0, v0), (s1, v1) = series[name][0], series[name][-1]
            print(f"  {name}: {v0:.4f} (step {s0}) -> {v1:.4f} (step {s1})")
    if args.regrade:
        try:
            regraded = regrade_evals(run_dir)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if regraded:
            print("saved held-out evals graded again under both answer formats:")
            rows = {f"eval/{k}": [(step, v[k]) for step, v in regraded.items()] for k in next(iter(regraded.values()))}
            print("\n".join(f"  {line}" for line in eval_table(rows)))
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
    parser.add_argument("--regrade", action="store_true",
                        help="also grade the saved held-out eval samples again under both answer formats (full "
                        "extraction chain and strict committed answers) and print accuracy and no-answer share per step")
    parser.set_defaults(func=handle)

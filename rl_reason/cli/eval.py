"""`rl-reason eval` (sample a model on benchmark suites) and `rl-reason grade` (grade another
system's generations offline). Both use the same grader and metrics (rl_reason.eval)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rl_reason.cli import checks
from rl_reason.cli.checks import (
    UserError,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from rl_reason.cli.data import DATA_DIR_HELP
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S

GRADE_FORMAT = """\
samples file format (JSON Lines, one generation per line):
  {"id": "<problem id of the suite>", "text": "<the full model response>"}
optional keys: "sample" (index within the problem; default: order of appearance),
"tokens", "finish_reason" (kept in the graded records), "suite" (rows of other suites are
skipped when present). rl-reason eval's own samples.jsonl is valid input.
"""

# Settings that change what is sampled; a resumed run must match them (see _check_resume).
SAMPLING_KEYS = ("model", "engine", "suite", "n", "temperature", "top_p", "top_k", "max_new_tokens", "template", "seed", "limit", "fields", "dtype")


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k values must be >= 1, got {text!r}")
    return ks


def _add_suite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True,
                   help="comma-separated dataset names (math500, aime24, aime25, amc23, gsm8k, minerva_math, "
                   "olympiadbench, math_train, humaneval, mbpp, stdio, arithmetic:heldout) or JSONL paths")
    p.add_argument("--fields", default=None,
                   help="field mapping for JSONL paths in --suite, e.g. 'prompt=question,answer=final,meta.level=lvl'")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N problems of each suite")
    p.add_argument("--grade-timeout", type=positive_float, default=VERIFY_TIMEOUT_S, help="seconds allowed to verify one math answer (default %(default)s)")
    p.add_argument("--grade-workers", type=positive_int, default=2, help="math verifier worker processes (default 2)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="sample a model on benchmark suites and report pass@k, maj@k, avg@n",
        description="Sample N responses per problem, grade them with the same verifier training uses, and "
        "write OUT/samples.jsonl (every sample), OUT/summary.json and OUT/plot.png. Rerunning the same "
        "command after a crash continues from samples.jsonl and gives the same summary.",
    )
    p.add_argument("--model", required=True, help="smollm2-135m, a hub id, a local model directory or a .gguf file")
    _add_suite_args(p)
    p.add_argument("--n", type=positive_int, default=16, help="samples per problem (default 16)")
    p.add_argument("--k", type=_ks, default=None, help="comma-separated k for pass@k and maj@k (default: 1 and powers of 2 up to n)")
    p.add_argument("--temperature", type=non_negative_float, default=0.6, help="sampling temperature (default 0.6)")
    p.add_argument("--top-p", type=checks.fraction, default=0.95, help="nucleus sampling threshold (default 0.95)")
    p.add_argument("--top-k", type=non_negative_int, default=0, help="top-k sampling, 0 = off (default 0)")
    p.add_argument("--max-new-tokens", type=positive_int, default=1024, help="maximum response length in tokens (default 1024)")
    p.add_argument("--engine", choices=("hf", "vllm"), default="hf", help="rollout engine (default hf; vllm needs the [vllm] extra and a GPU)")
    p.add_argument("--template", default="auto",
                   help="prompt template: chat_boxed, base_boxed, chat_code, base_code, or auto (chat if the tokenizer "
                   "has a chat template, boxed for math and code for code suites; default auto)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed; chunk j of prompts uses seed+j (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="problems per generate call; also the resume granularity (default 8)")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    p.add_argument("--device", default=None, help="cpu or cuda for the hf engine (default: cuda when available)")
    p.add_argument("--out", required=True, help="output directory (created; reused to resume)")
    p.add_argument("--rerank", default=None, metavar="PRM_DIR",
                   help="also report best-of-n picked by this trained process reward model (RUN/final of "
                   "recipes/prm.yaml) as rerank@n, beside pass@1 and maj@n; scores go to OUT/rerank_scores.jsonl")
    p.add_argument("--rerank-aggregation", choices=("min", "last", "mean"), default="min",
                   help="how --rerank turns a response's step scores into one (default min: its weakest step)")
    p.set_defaults(func=run_eval)

    g = subparsers.add_parser(
        "grade",
        help="grade another system's generations offline with rl-reason's verifier and metrics",
        description="Grade a samples file against a suite and write OUT/graded_samples.jsonl, OUT/summary.json "
        "and OUT/plot.png.",
        epilog=GRADE_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("--samples", required=True, help="JSONL of generations (format below)")
    _add_suite_args(g)
    g.add_argument("--k", type=_ks, default=None, help="comma-separated k for pass@k and maj@k (default: 1 and powers of 2 up to the fewest samples of a problem)")
    g.add_argument("--out", default=None, help="output directory (default: <samples file>.graded/)")
    g.set_defaults(func=run_grade)


def _default_ks(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks


def _load_suite(name: str, args: argparse.Namespace) -> list:
    checks.dataset(name, "--suite")
    errors: list[str] = []
    examples = checks.load_examples(name, "--suite", data_dir=args.data_dir, field_map=args.fields, limit=args.limit,
                                    errors=errors)
    for err in errors:
        print(f"skipped bad row: {err}", file=sys.stderr)
    if not examples:
        raise UserError(f"suite {name!r} has no usable problems")
    return examples


def _suite_label(name: str) -> str:
    return Path(name).stem if name.endswith(".jsonl") else name


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_resume(out: Path, config: dict[str, Any]) -> None:
    """Refuse to mix samples of different settings in one samples.jsonl."""
    import json

    path = out / "run_config.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), config.get(k)) for k in SAMPLING_KEYS if old.get(k) != config.get(k)}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{out} holds a run with other settings ({changes}); use a fresh --out")


def _print_summaries(summaries: dict[str, dict[str, Any]]) -> None:
    for suite, s in summaries.items():
        parts = [f"{m}={v['mean']:.3f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}]" for m, v in s["metrics"].items()]
        print(f"{suite} ({s['num_problems']} problems, {s['num_samples']} samples), full extraction chain: " + "  ".join(parts))
        if s.get("strict"):
            strict = [f"{m}={v['mean']:.3f}" for m, v in s["strict"]["metrics"].items()]
            print("  strict (committed answers only): " + "  ".join(strict))
            print(f"  strict statuses: {s['strict']['status_counts']}")
        print(f"  statuses: {s['status_counts']}  finish: {s['finish_reasons']}")
        if s.get("extracted_by"):
            print("  answers found by: " + "  ".join(f"{rule} {share:.1%}" for rule, share in s["extracted_by"].items()))


def run_eval(args: argparse.Namespace) -> int:
    ks = args.k or _default_ks(args.n)
    if ks[-1] > args.n:
        raise UserError(f"--k {ks[-1]} is larger than --n {args.n}")
    out = checks.output_dir(args.out)
    checks.model_name(args.model)
    config = {**{k: getattr(args, k) for k in SAMPLING_KEYS}, "ks": ks}
    suites = {_suite_label(name): _load_suite(name, args) for name in args.suite.split(",")}
    _check_resume(out, config)
    if args.rerank:
        _check_prm(args.rerank)

    from rl_reason.data_pipelines.templates import default_template
    from rl_reason.eval import evaluate, write_report
    from rl_reason.io import atomic_write_json
    from rl_reason.models import load_model
    from rl_reason.rollout import SamplingParams, get_engine

    if args.engine == "hf":
        with checks.loading(f"--model {args.model}"):
            model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device or _default_device())
        engine = get_engine("hf", model=model, tokenizer=tokenizer)
    else:  # vLLM loads the weights itself; the templates need only its tokenizer
        engine = get_engine("vllm", model=args.model, dtype=args.dtype)
        tokenizer = engine.tokenizer
    # Recorded once the model has loaded: a model that fails to load leaves no run to refuse the corrected command.
    atomic_write_json(out / "run_config.json", config)
    sampling = SamplingParams(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                              max_new_tokens=args.max_new_tokens, seed=args.seed)
    summaries = {}
    for label, examples in suites.items():
        template = args.template if args.template != "auto" else default_template(examples[0], tokenizer)
        summaries[label] = evaluate(
            engine, examples, n=args.n, ks=ks, sampling_params=sampling, template=template, tokenizer=tokenizer,
            out_dir=out, suite=label, batch_size=args.batch_size, grade_timeout=args.grade_timeout,
            grade_workers=args.grade_workers,
        )
    if args.rerank:
        _rerank(args, out, suites, summaries)
    write_report(out, summaries, config)
    _print_summaries(summaries)
    print(f"wrote {out / 'samples.jsonl'}, {out / 'summary.json'}, {out / 'plot.png'}")
    return 0


def _check_prm(path: str) -> None:
    from rl_reason.model_names import is_step_model_dir

    if not Path(path).expanduser().is_dir():
        raise UserError(f"--rerank {path}: no such folder; it needs a trained process reward model (RUN/final of recipes/prm.yaml)")
    if not is_step_model_dir(Path(path).expanduser()):
        raise UserError(f"--rerank {path} is not a trained process reward model: its config.json names no "
                        "*ForTokenClassification architecture; train one with recipes/prm.yaml")


def _rerank(args: argparse.Namespace, out: Path, suites: dict[str, list], summaries: dict[str, dict[str, Any]]) -> None:
    """Best-of-n by the PRM for each suite, into its summary as ``rerank``."""
    import json

    from rl_reason.eval import read_samples
    from rl_reason.eval.rerank import best_of_n
    from rl_reason.io import atomic_write_text
    from rl_reason.trainers.prm import ProcessScorer

    with checks.loading(f"--rerank {args.rerank}"):
        scorer = ProcessScorer(args.rerank, args.rerank_aggregation, args.dtype, args.device or _default_device(),
                               max_response_tokens=2 * args.max_new_tokens)
    lines = []
    for label, examples in suites.items():
        by_id = {ex.id: ex for ex in examples}
        records = [r for r in read_samples(out / "samples.jsonl", label) if r["id"] in by_id]
        scores = scorer([by_id[r["id"]].prompt for r in records], [r["text"] for r in records]).tolist()
        result = best_of_n(records, scores)
        summaries[label]["rerank"] = {"model": args.rerank, "aggregation": args.rerank_aggregation,
                                      f"rerank@{args.n}": result["accuracy"], "picked": result["picked"]}
        lines += [json.dumps({"suite": label, "id": r["id"], "sample": r["sample"], "score": s}) + "\n"
                  for r, s in zip(records, scores)]
        ci = result["accuracy"]["ci95"]
        print(f"{label}: best-of-{args.n} by the PRM ({args.rerank_aggregation} step score) = "
              f"{result['accuracy']['mean']:.3f} [{ci[0]:.3f},{ci[1]:.3f}]")
    atomic_write_text(out / "rerank_scores.jsonl", "".join(lines))

def _read_generations(path: Path, suite: str, examples: dict) -> list[dict[str, Any]]:
    from rl_reason.io import JsonlError, read_jsonl

    rows: list[dict[str, Any]] = []
    next_index: dict[str, int] = {}
    for line_no, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise UserError(str(row))
        if row.get("suite") not in (None, suite):
            continue
        if not isinstance(row.get("id"), str) or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{line_no}: each line needs string 'id' and 'text'")
        if row["id"] not in examples:
            raise UserError(f"{path}:{line_no}: id {row['id']!r} is not a problem of suite {suite!r}")
        index = row.get("sample", next_index.get(row["id"], 0))
        next_index[row["id"]] = int(index) + 1
        keep = {k: row[k] for k in ("tokens", "finish_reason") if k in row}
        rows.append({"suite": suite, "id": row["id"], "sample": int(index), "text": row["text"], **keep})
    return rows


def run_grade(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from rl_reason.eval import grade_records, summarize, write_report
    from rl_reason.io import atomic_write_text

    samples_path = checks.input_file(args.samples, "--samples")
    out = checks.output_dir(args.out if args.out else samples_path.with_name(samples_path.name + ".graded"))
    summaries, graded_all = {}, []
    for name in args.suite.split(","):
        label = _suite_label(name)
        examples = {ex.id: ex for ex in _load_suite(name, args)}
        rows = _read_generations(samples_path, label, examples)
        if not rows:
            raise UserError(f"{samples_path} has no generations for suite {label!r}")
        present = {r["id"] for r in rows}
        if len(present) < len(examples):
            print(f"{label}: {len(examples) - len(present)} of {len(examples)} problems have no generations; "
                  "grading the rest", file=sys.stderr)
        examples = {pid: ex for pid, ex in examples.items() if pid in present}
        graded = grade_records(rows, examples, timeout=args.grade_timeout, workers=args.grade_workers)
        ks = args.k or _default_ks(min(Counter(r["id"] for r in graded).values()))
        summaries[label] = {"suite": label, **summarize(graded, examples, ks)}
        graded_all += graded
    atomic_write_text(out / "graded_samples.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in graded_all))
    write_report(out, summaries, {"samples": str(samples_path), "suite": args.suite, "k": args.k})
    _print_summaries(summaries)
    print(f"wrote {out / 'graded_samples.jsonl'}, {out / 'summary.json'}")
    return 0

"""`rl-reason data list` and `rl-reason data prepare`: build a clean training set (dedup,
decontamination against the eval suites, difficulty filtering) and DPO pairs, with a report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rl_reason.cli import checks
from rl_reason.cli.checks import UserError, fraction, positive_int

DEFAULT_EVAL_SETS = "math500,aime24,aime25,amc23,gsm8k,minerva_math,olympiadbench"
DATA_DIR_HELP = "folder with the local dataset copies (default: $RL_REASON_DATA_DIR or ../shared/data beside the repo)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="list datasets; prepare training sets and DPO pairs")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="show the registered datasets, their hub ids and local copies",
                        description="List every registered dataset with its hub id and split, and whether a local "
                        "copy exists in the data folder (then no download is needed).")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.set_defaults(func=run_list)

    pr = sub.add_parser(
        "prepare",
        help="dedup, decontaminate and difficulty-filter a training set; build DPO pairs",
        description="Load a dataset, drop exact and normalised duplicates, drop problems sharing a word n-gram "
        "with the eval suites, optionally keep only problems a policy sometimes solves, and write "
        "OUT/train.jsonl (Example schema), OUT/report.json (every dropped row and why) and, with "
        "--pairs-from, OUT/dpo_pairs.jsonl (TRL prompt/chosen/rejected). Bad input rows are reported "
        "with file and line and skipped.",
    )
    pr.add_argument("--dataset", required=True, help="a registered name (e.g. math_train) or a JSONL path")
    pr.add_argument("--fields", default=None, help="field mapping for a JSONL path, e.g. 'prompt=question,answer=final,id='")
    pr.add_argument("--split", default=None, help="hub split (default: the dataset's own)")
    pr.add_argument("--limit", type=positive_int, default=None, help="load only the first N rows")
    pr.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    pr.add_argument("--no-dedup", action="store_true", help="skip duplicate removal")
    pr.add_argument("--exact-dedup-only", action="store_true", help="drop only byte-identical prompts, not normalised matches")
    pr.add_argument("--decontaminate", default=DEFAULT_EVAL_SETS,
                    help=f"comma-separated eval suites to decontaminate against, or 'none' (default {DEFAULT_EVAL_SETS})")
    pr.add_argument("--ngram", type=positive_int, default=13, help="word n-gram length for decontamination (default 13)")
    pr.add_argument("--pass-rates", default=None,
                    help="graded samples.jsonl of a policy on this set (from rl-reason eval/grade); enables difficulty filtering")
    pr.add_argument("--min-pass", type=fraction, default=0.0, help="drop problems with pass rate <= this (default 0: never solved)")
    pr.add_argument("--max-pass", type=fraction, default=1.0, help="drop problems with pass rate >= this (default 1: always solved)")
    pr.add_argument("--keep-unmeasured", action="store_true", help="keep problems the pass-rate file does not cover")
    pr.add_argument("--pairs-from", default=None, help="graded samples.jsonl to build DPO pairs from (same prompt, correct vs incorrect)")
    pr.add_argument("--max-pairs-per-prompt", type=positive_int, default=None, help="cap on pairs per problem (default: as many as pair up)")
    pr.add_argument("--conversational", action="store_true",
                    help="write pairs as chat messages (TRL conversational format) instead of plain prompt text")
    pr.add_argument("--out", required=True, help="output directory")
    pr.set_defaults(func=run_prepare)


def run_list(args: argparse.Namespace) -> int:
    from rl_reason.data_pipelines.registry import REGISTRY, default_data_dir

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if data_dir is not None and not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir}: no such folder")
    print(f"data dir: {data_dir or '(none; datasets load from the hub)'}")
    for name, spec in REGISTRY.items():
        local = data_dir / spec.local_file if data_dir else None
        where = f"local {local}" if local and local.is_file() else "hub"
        print(f"  {name:14s} {spec.hub_id}[{spec.hub_split}]  -> {where}")
    print("  arithmetic     generated (arithmetic:train, arithmetic:heldout)")
    print("  code_tasks     generated (code_tasks:train, code_tasks:heldout)")
    return 0


def _check_prepare_inputs(args: argparse.Namespace, eval_names: list[str]) -> None:
    checks.dataset(args.dataset, "--dataset")
    for name in eval_names:
        checks.dataset(name, "--decontaminate")
    for flag, path in (("--pass-rates", args.pass_rates), ("--pairs-from", args.pairs_from)):
        if path:
            checks.input_file(path, flag)
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UserError(f"--data-dir {args.data_dir}: no such folder")
    if args.min_pass > args.max_pass:
        raise UserError(f"--min-pass {args.min_pass} is above --max-pass {args.max_pass}")


def run_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rl_reason.data_pipelines import (
        build_dpo_pairs,
        decontaminate,
        dedup,
        difficulty_filter,
        pass_rates_from_samples,
        save_examples,
    )
    from rl_reason.data_pipelines.templates import user_message
    from rl_reason.io import atomic_write_json, atomic_write_text

    eval_names = [] if args.decontaminate.strip().lower() == "none" else [s.strip() for s in args.decontaminate.split(",") if s.strip()]
    _check_prepare_inputs(args, eval_names)
    out = checks.output_dir(args.out)
    inputs = tuple(p for p in (args.dataset, args.pass_rates, args.pairs_from) if p)
    for name in ("train.jsonl", "report.json", "dpo_pairs.jsonl"):  # the files it writes, never over an input
        checks.output_file(out / name, "--out", inputs=inputs)
    steps = ["load", *(["dedup"] if not args.no_dedup else []), *(["decontaminate"] if eval_names else []),
             *(["difficulty"] if args.pass_rates else []), *(["pairs"] if args.pairs_from else []), "write"]
    report: dict[str, Any] = {"dataset": args.dataset, "steps": {}}
    bar = tqdm(steps, desc="data prepare", unit="step")

    def step(name: str) -> None:
        bar.set_postfix_str(name)

    step("load")
    errors: list[str] = []
    examples = checks.load_examples(args.dataset, "--dataset", split=args.split, data_dir=args.data_dir,
                                    field_map=args.fields, limit=args.limit, errors=errors)
    for err in errors:
        print(f"skipped bad row: {err}", file=sys.stderr)
    if not examples:
        raise UserError(f"--dataset {args.dataset}: no usable rows" + (f" ({len(errors)} bad)" if errors else ""))
    report["steps"]["load"] = {"kept": len(examples), "bad_rows": errors}
    loaded = list(examples)
    bar.update()

    if not args.no_dedup:
        step("dedup")
        examples, dropped = dedup(examples, normalized=not args.exact_dedup_only)
        report["steps"]["dedup"] = {"kept": len(examples), "dropped": dropped}
        bar.update()
    if eval_names:
        step("decontaminate")
        eval_sets = {name: checks.load_examples(name, "--decontaminate", data_dir=args.data_dir) for name in eval_names}
        examples, dropped = decontaminate(examples, eval_sets, n=args.ngram)
        report["steps"]["decontaminate"] = {"against": eval_names, "ngram": args.ngram, "kept": len(examples), "dropped": dropped}
        bar.update()
    if args.pass_rates:
        step("difficulty")
        rates = pass_rates_from_samples(args.pass_rates)
        examples, dropped = difficulty_filter(examples, rates, low=args.min_pass, high=args.max_pass, keep_unmeasured=args.keep_unmeasured)
        report["steps"]["difficulty"] = {"pass_rates": args.pass_rates, "min_pass": args.min_pass, "max_pass": args.max_pass,
                                         "kept": len(examples), "dropped": dropped}
        bar.update()
    if args.pairs_from:
        step("pairs")
        from rl_reason.eval import read_samples

        samples = read_samples(args.pairs_from)
        if any("correct" not in r for r in samples):
            raise UserError(f"{args.pairs_from}: pairs need graded samples (a 'correct' key); run rl-reason grade first")
        # Pairs come from the loaded set, not the cleaned one: a pass-rate-filtered set drops
        # exactly the always/never-solved problems, which have no pairs anyway.
        by_id = {ex.id: ex for ex in loaded}
        prompts = {pid: user_message(ex) for pid, ex in by_id.items()}
        pairs = build_dpo_pairs([r for r in samples if r["id"] in by_id], prompts, args.max_pairs_per_prompt)
        if args.conversational:
            pairs = [{"id": p["id"], "prompt": [{"role": "user", "content": p["prompt"]}],
                      "chosen": [{"role": "assistant", "content": p["chosen"]}],
                      "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
        atomic_write_text(out / "dpo_pairs.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
        report["steps"]["pairs"] = {"samples": args.pairs_from, "pairs": len(pairs), "prompts_with_pairs": len({p["id"] for p in pairs})}
        bar.update()

    step("write")
    save_examples(out / "train.jsonl", examples)
    report["kept"] = len(examples)
    atomic_write_json(out / "report.json", report)
    bar.update()
    bar.close()
    for name, info in report["steps"].items():
        dropped = len(info.get("dropped", info.get("bad_rows", [])))
        print(f"{name:14s} kept {info.get('kept', info.get('pairs'))}" + (f", dropped {dropped}" if dropped else ""))
    print(f"wrote {out / 'train.jsonl'} ({len(examples)} examples) and {out / 'report.json'}")
    return 0

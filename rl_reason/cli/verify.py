"""``rl-reason verify``: grade answers from the command line.

``verify math`` grades one response (``--response/--gold``) or a JSONL file
(``--input/--output``); ``verify code`` (rl_reason.cli.verify_code) runs code against tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from rl_reason.cli import checks
from rl_reason.cli.checks import (
    UserError,
    non_negative_float,
    positive_float,
    positive_int,
)
from rl_reason.verifiers.extract import ANSWER_FORMATS
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S

CHUNK = 64  # rows per verify_batch call in file mode


def register(subparsers) -> None:
    from rl_reason.cli.verify_code import add_code_parser

    parser = subparsers.add_parser(
        "verify",
        help="grade model answers (math) and code (sandboxed tests)",
        description="Grade model answers against references with hard per-answer timeouts.",
    )
    kinds = parser.add_subparsers(dest="verify_kind", metavar="KIND")
    _register_math(kinds)
    add_code_parser(kinds)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _register_math(kinds) -> None:
    p = kinds.add_parser(
        "math",
        help="grade final math answers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade the final answer of math responses against gold answers.\n\n"
        "One pair:   rl-reason verify math --response 'so $\\boxed{\\frac12}$' --gold 0.5\n"
        "A file:     rl-reason verify math --input samples.jsonl --output graded.jsonl\n\n"
        "Each output row is the input row plus a 'verify' object: correct, score, status\n"
        "(correct|wrong|no_answer|invalid_gold|timeout|error), extracted, reason. Rows that\n"
        "are malformed are reported with their line number and graded as status 'error'.",
    )
    one = p.add_argument_group("one pair")
    one.add_argument("--response", help="the model's response text")
    one.add_argument("--gold", help="the reference answer (bare, or a solution ending in \\boxed{})")
    one.add_argument("--json", action="store_true", help="print the result as a JSON object")
    batch = p.add_argument_group("a JSONL file")
    batch.add_argument("--input", metavar="FILE.jsonl", help="JSONL file with one response/gold pair per row")
    batch.add_argument("--output", metavar="OUT.jsonl", help="where to write the graded rows (written atomically at the end)")
    batch.add_argument("--response-key", default="response", help="row key holding the response (default: %(default)s)")
    batch.add_argument("--gold-key", default="gold", help="row key holding the gold answer (default: %(default)s)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--workers", type=positive_int, default=max(1, os.cpu_count() or 1), help="symbolic-check worker processes (default: CPU count, %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=VERIFY_TIMEOUT_S, help="hard wall-clock limit per symbolic check, seconds (default: %(default)s)")
    p.add_argument("--rel-tol", type=non_negative_float, default=None, help="accept numeric answers within this relative tolerance (default: exact)")
    p.add_argument(
        "--answer-format",
        choices=ANSWER_FORMATS,
        default=ANSWER_FORMATS[0],
        help="full: the whole extraction chain (box, answer phrase, final math, last number); "
        "strict: committed answers only (default: %(default)s)",
    )
    p.set_defaults(func=run_math, parser=p)


def run_math(args) -> int:
    single = args.response is not None or args.gold is not None
    if single == (args.input is not None):
        args.parser.error("give either --response and --gold, or --input (with --output)")
    if single:
        if args.response is None or args.gold is None:
            args.parser.error("--response and --gold go together")
        return _run_single(args)
    if not args.output:
        args.parser.error("--input needs --output")
    checks.input_file(args.input, "--input")
    checks.output_file(args.output, "--output", inputs=(args.input,))
    return _run_file(args)


def _run_single(args) -> int:
    from rl_reason.verifiers import verify_math

    r = verify_math(args.response, args.gold, timeout=args.timeout, rel_tol=args.rel_tol, answer_format=args.answer_format)
    if args.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False))
    else:
        print(f"{r.status}  (score {r.score:g})")
        print(f"extracted: {r.extracted if r.extracted is not None else '-'}" + (f"  (by {r.extracted_by})" if r.extracted_by else ""))
        print(f"reason:    {r.reason}")
    return 0


def _load_pairs(args):
    """(line_no, row or None, response, gold, problem or None) per non-blank input line."""
    from rl_reason.io import JsonlError, read_jsonl

    items = []
    for line_no, row in read_jsonl(args.input):
        if isinstance(row, JsonlError):
            items.append((line_no, None, None, None, str(row)))
            continue
        missing = [k for k in (args.response_key, args.gold_key) if k not in row]
        gold = row.get(args.gold_key)
        if isinstance(gold, (int, float)) and not isinstance(gold, bool):  # a numeric gold, as data prepare accepts
            gold = str(gold)
        bad_type = [k for k, v in ((args.response_key, row.get(args.response_key)), (args.gold_key, gold))
                    if k in row and not isinstance(v, str)]
        if missing or bad_type:
            what = f"missing key(s) {missing}" if missing else f"key(s) {bad_type} are not strings"
            items.append((line_no, row, None, None, f"{args.input}:{line_no}: {what}"))
        else:
            items.append((line_no, row, row[args.response_key], gold, None))
    return items


def _run_file(args) -> int:
    from rich.console import Console
    from rich.table import Table
    from tqdm import tqdm

    from rl_reason.io import atomic_write_text
    from rl_reason.verifiers import STATUSES, MathVerifier

    items = _load_pairs(args)
    good = [i for i, it in enumerate(items) if it[4] is None]
    for _, _, _, _, problem in items:
        if problem:
            print(f"malformed row: {problem}", file=sys.stderr)
    if not good:
        raise UserError(f"--input {args.input}: no valid row among {len(items)} (see the messages above)")

    start = time.perf_counter()
    graded: dict[int, Any] = {}  # item index -> result, filled as results arrive so Ctrl-C keeps them
    interrupted = False
    with tqdm(total=len(good), desc="verifying", unit="pair", file=sys.stderr, disable=args.quiet) as bar, \
            MathVerifier(workers=args.workers, timeout=args.timeout, rel_tol=args.rel_tol,
                         answer_format=args.answer_format) as v:
        # Batches of CHUNK rows: on Ctrl-C only the batch in flight is finished, not the whole file.
        try:
            for first in range(0, len(good), CHUNK):
                part = good[first : first + CHUNK]

                def finished(j: int, result: Any, part: list[int] = part) -> None:
                    graded[part[j]] = result
                    bar.update(1)

                v.verify_batch([items[i][2] for i in part], [items[i][3] for i in part], on_result=finished)
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.perf_counter() - start

    counts = dict.fromkeys(STATUSES, 0)
    lines = []
    for i, (line_no, row, _, _, problem) in enumerate(items):
        if problem:
            verdict = {"correct": False, "score": 0.0, "status": "error", "extracted": None, "reason": problem}
        elif i not in graded:  # not reached before an interrupt
            continue
        else:
            verdict = graded[i].to_dict()
            counts[verdict["status"]] += 1
        lines.append(json.dumps({**(row or {"line": line_no}), "verify": verdict}, ensure_ascii=False) + "\n")
    atomic_write_text(args.output, "".join(lines))
    if interrupted:
        print(f"interrupted: wrote the {len(graded)} rows graded so far (of {len(good)}) to {args.output}", file=sys.stderr)
        return 130

    # Judged rows exclude timeouts, errors and bad golds: those say nothing about the model.
    judged = counts["correct"] + counts["wrong"] + counts["no_answer"]
    table = Table(title=f"verify math: {args.input}")
    table.add_column("status")
    table.add_column("rows", justify="right")
    for status, n in counts.items():
        table.add_row(status, str(n))
    table.add_row("malformed rows (written as error)", str(len(items) - len(good)))
    table.add_row("accuracy (correct / judged)", f"{counts['correct'] / judged:.4f}" if judged else "-")
    table.add_row("accuracy (correct / all rows)", f"{counts['correct'] / len(items):.4f}" if items else "-")
    table.add_row("throughput", f"{len(good) / elapsed:.1f} pairs/s" if elapsed > 0 else "-")
    by_rule: dict[str, int] = {}
    for r in graded.values():
        by_rule[r.extracted_by or "none"] = by_rule.get(r.extracted_by or "none", 0) + 1
    table.add_row(f"answers found by ({args.answer_format})", ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())))
    Console(stderr=False).print(table)
    print(f"wrote {len(lines)} rows to {args.output}")
    return 0

"""`rl-reason verify code --input FILE.jsonl`: score responses against their tests in the sandbox.

Each input row needs `response` (model text or bare code) and `tests` (list of test dicts, see
rl_reason.verifiers.code); `id` is carried through. The lead wires `add_code_parser` under the
`verify` command.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
from collections import Counter
from dataclasses import asdict

from rl_reason.cli.sandbox import _limits_args, open_sandbox


def _verify_code(args) -> int:
    from tqdm import tqdm

    from rl_reason.io import JsonlAppender, JsonlError, read_jsonl
    from rl_reason.sandbox.process import SandboxUnavailable
    from rl_reason.verifiers.code import verify_code

    rows, bad = [], 0
    for line_no, row in read_jsonl(args.input):
        if isinstance(row, JsonlError):
            print(f"error: {row}", file=sys.stderr)
            bad += 1
        elif not isinstance(row, dict) or "response" not in row or not isinstance(row.get("tests"), list):
            print(f"error: {args.input}:{line_no}: row needs 'response' (str) and 'tests' (list)", file=sys.stderr)
            bad += 1
        else:
            rows.append((line_no, row))
    if bad and not args.skip_bad_rows:
        print(f"{bad} bad row(s) in {args.input}; fix them or pass --skip-bad-rows", file=sys.stderr)
        return 2
    try:
        sandbox = open_sandbox(args)
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def score(item):
        line_no, row = item
        try:
            return line_no, row, verify_code(row["response"], row["tests"], sandbox=sandbox), None
        except ValueError as exc:  # malformed tests: name the row
            return line_no, row, None, f"{args.input}:{line_no}: {exc}"

    statuses: Counter[str] = Counter()
    total_score = 0.0
    appender = JsonlAppender(args.output) if args.output else None
    with sandbox, concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        for line_no, row, result, error in tqdm(pool.map(score, rows), total=len(rows), desc="verify code", unit="row",
                                                 disable=args.quiet):
            if error:
                print(f"error: {error}", file=sys.stderr)
                statuses["bad_tests"] += 1
                continue
            statuses[result.status] += 1
            total_score += result.score
            if appender:
                appender.write({"id": row.get("id", line_no), **asdict(result)})
    if appender:
        appender.close()
    n = sum(statuses.values())
    print(f"rows: {n}  mean score: {total_score / n if n else 0.0:.4f}  "
          f"all tests passed: {statuses['passed']}/{n}  statuses: {dict(sorted(statuses.items()))}")
    return 0


def add_code_parser(verify_subparsers) -> argparse.ArgumentParser:
    parser = verify_subparsers.add_parser("code", help="score code responses against their tests in the sandbox",
                                          description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="JSONL with rows {id?, response, tests}")
    parser.add_argument("--output", default=None, help="JSONL to append one CodeResult per row to (default: none)")
    parser.add_argument("--backend", choices=["process", "docker"], default="process", help="sandbox backend (default process)")
    parser.add_argument("--workers", type=int, default=2, help="rows verified at once (default 2)")
    parser.add_argument("--skip-bad-rows", action="store_true", help="report malformed rows and go on instead of stopping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _limits_args(parser)
    parser.set_defaults(func=_verify_code)
    return parser

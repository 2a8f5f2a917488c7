"""`rl-reason verify code --input FILE.jsonl`: score responses against their tests in the sandbox.

Each input row needs `response` (model text or bare code) and `tests` (a non-empty list of
tests; the format is in TEST_FORMAT below and docs/cli.md); `id` is carried through. Every row is
checked before any code runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
from collections import Counter
from dataclasses import asdict

from rl_reason.cli import checks
from rl_reason.cli.sandbox import _limits_args, open_sandbox

TEST_FORMAT = """\
input format (JSON Lines, one row per line):
  {"id": "p1", "response": "<model text or bare code>", "tests": [<test>, ...]}
test kinds (every test is a dict with "kind" and the keys below; "tolerance" is optional
everywhere and compares numbers within that relative/absolute tolerance):
  stdio   {"kind": "stdio", "input": "2 3\\n", "output": "5\\n"}
          runs the program with `input` on stdin; stdout must match `output` (whitespace-normalised)
  call    {"kind": "call", "fn_name": "add", "inputs": [[2, 3], [0, 0]], "outputs": [5, 0]}
          calls fn_name(*inputs[j]) for each case j: each entry of `inputs` is the LIST of arguments
          of one call ([[2]] calls f(2)); `outputs` has one expected value per call
  assert  {"kind": "assert", "code": "assert add(2, 3) == 5", "setup": "...", "entry_point": "add"}
          runs `setup` then `code` after the solution; with entry_point, also calls check(entry_point)
  pytest  {"kind": "pytest", "code": "def test_add():\\n    assert add(2, 3) == 5\\n"}
          runs the test functions with pytest; each test function counts as one test
score = passed tests / all tests; status is passed, failed, no_code, compile_error, timeout or error.
"""


def _check_rows(path: str) -> tuple[list[tuple[int, dict]], list[tuple[int, dict, str]]]:
    """(good rows, bad rows as (line, row, message naming file:line and key)); nothing runs yet."""
    from rl_reason.io import JsonlError, read_jsonl
    from rl_reason.verifiers.code import validate_tests

    good, bad = [], []
    for line_no, row in read_jsonl(path):
        where = f"{path}:{line_no}"
        if isinstance(row, JsonlError):
            bad.append((line_no, {}, str(row)))
            continue
        problem = None
        if not isinstance(row.get("response"), str):
            problem = "key 'response' must be a string" + ("" if "response" in row else " (missing)")
        else:
            try:
                validate_tests(row.get("tests"))
            except ValueError as exc:
                problem = f"key 'tests': {exc}"
        if problem:
            bad.append((line_no, row, f"{where}: {problem}"))
        else:
            good.append((line_no, row))
    return good, bad


def _verify_code(args) -> int:
    from tqdm import tqdm

    from rl_reason.io import atomic_write_text
    from rl_reason.sandbox.process import SandboxUnavailable
    from rl_reason.verifiers.code import verify_code

    checks.input_file(args.input, "--input")
    if args.output:
        checks.output_file(args.output, "--output", inputs=(args.input,))
    rows, bad = _check_rows(args.input)
    for _, _, message in bad:
        print(f"bad row: {message}", file=sys.stderr)
    if bad and not args.skip_bad_rows:
        raise checks.UserError(f"{len(bad)} bad row(s) in {args.input} (first: {bad[0][2]}); "
                               "fix them or pass --skip-bad-rows")
    if not rows:
        raise checks.UserError(f"--input {args.input}: no valid row to verify")
    try:
        sandbox = open_sandbox(args)
    except SandboxUnavailable as exc:
        raise checks.UserError(str(exc)) from None

    def score(item):
        line_no, row = item
        return line_no, row, verify_code(row["response"], row["tests"], sandbox=sandbox)

    statuses: Counter[str] = Counter()
    total_score = 0.0
    records = {line_no: {"id": row.get("id", line_no), "score": 0.0, "passed": 0, "total": 0, "status": "bad_row",
                         "tests": [], "detail": message} for line_no, row, message in bad}
    interrupted = False
    with sandbox, concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        try:
            for line_no, row, result in tqdm(pool.map(score, rows), total=len(rows), desc="verify code", unit="row",
                                             disable=args.quiet):
                statuses[result.status] += 1
                total_score += result.score
                records[line_no] = {"id": row.get("id", line_no), **asdict(result)}
        except KeyboardInterrupt:
            interrupted = True
            pool.shutdown(wait=False, cancel_futures=True)
    if args.output:  # one row per input line, in input order, replacing any earlier file whole
        atomic_write_text(args.output, "".join(json.dumps(records[k], ensure_ascii=False) + "\n" for k in sorted(records)))
    n = sum(statuses.values())
    print(f"rows: {n}  mean score: {total_score / n if n else 0.0:.4f}  "
          f"all tests passed: {statuses['passed']}/{n}  statuses: {dict(sorted(statuses.items()))}"
          + (f"  bad rows skipped: {len(bad)}" if bad else ""))
    if interrupted:
        print(f"interrupted after {n} of {len(rows)} rows" + (f"; wrote them to {args.output}" if args.output else ""),
              file=sys.stderr)
        return 130
    return 0


def add_code_parser(verify_subparsers) -> argparse.ArgumentParser:
    parser = verify_subparsers.add_parser("code", help="score code responses against their tests in the sandbox",
                                          description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                                          epilog=TEST_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="JSONL with rows {id?, response, tests} (format below)")
    parser.add_argument("--output", default=None,
                        help="JSONL to write one result per input row to, in input order (replaced atomically; default: none)")
    parser.add_argument("--backend", choices=["process", "docker"], default="process", help="sandbox backend (default process)")
    parser.add_argument("--workers", type=checks.positive_int, default=2, help="rows verified at once (default 2)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="report malformed rows (written to --output with status bad_row) and verify the rest")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _limits_args(parser)
    parser.set_defaults(func=_verify_code)
    return parser

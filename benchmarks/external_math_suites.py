"""``verify_math`` against test suites other people labelled, with math-verify in the same run.

Suites (neither is stored in this repository; both are read at benchmark time):

1. **Math-Verify's own tests**: the ``tests/`` folder of the ``math-verify==0.9.0`` source
   distribution, fetched with ``pip download --no-binary :all: --no-deps`` into a cache folder.
   Every ``pytest.mark.parametrize`` case of a test that grades a (gold, prediction) pair is
   read with ``ast`` (nothing of it is executed) and called the way that test calls it. A case
   whose label needs a non-default Math-Verify setting (the test passes ``precision=5``,
   ``strict=False``, ``allow_set_relation_comp=True``, expression-only or LaTeX-only
   extraction, or ``boxed_match_priority=0``, and math-verify with its defaults does not give the
   label) is listed with the reason and left out. Tests that do not grade pairs (parser
   configs, timeouts, string extraction) are not cases.
2. **The MATH release's equivalence tests**: ``modeling/math_equivalence_test.py`` of
   https://github.com/hendrycks/math. It is not on PyPI (neither the file nor a package that
   ships it), so pass a copy with ``--math-equivalence-tests PATH`` (e.g. from
   ``git clone https://github.com/hendrycks/math``); without it the suite is reported as not
   run. Both sides are final answers, so both verifiers get them boxed.

3. **MATH-500 reference solutions with their boxes removed** (``../shared/data/math500.jsonl``;
   ``--no-solutions`` skips it): text written by the MATH authors that states the gold answer
   without ``\\boxed{}`` (the box's content stays in the text), each against its own gold
   (label: equivalent) and against the next problem's gold (label: not equivalent), so it
   measures how often the final statement is read as a human reads it, and false accepts.

Per suite: agreement with the labels, false accepts (label 0, graded correct), false rejects,
for ``verify_math`` (full chain and strict) and math-verify, and every disagreement of
``verify_math`` with the label, listed for a one-line judgement.

Run: ``PYTHONPATH=$PWD python3 benchmarks/external_math_suites.py [--math-equivalence-tests F]``.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rl_reason.verifiers import MathVerifier

MATH_VERIFY_SDIST = "math-verify==0.9.0"
CACHE = Path(os.environ.get("RL_REASON_BENCH_CACHE", Path(tempfile.gettempdir()) / "rl-reason-bench"))
# Math-Verify's ``compare_strings`` defaults (tests/test_all.py); anything else is a setting.
DEFAULT_CALL = {"match_types": ("latex", "expr"), "precision": 6, "strict": True, "allow_set_relation_comp": False}


@dataclass
class Case:
    suite: str
    where: str  # file::test[index]
    gold: str
    pred: str
    label: bool
    settings: dict = field(default_factory=dict)  # the test's own keyword settings


def fetch_math_verify_tests() -> Path:
    """The sdist's tests folder, downloaded once into the cache folder."""
    dest = CACHE / "math_verify-0.9.0"
    if not (dest / "tests").is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q", MATH_VERIFY_SDIST, "-d", str(CACHE)],
            check=True,
        )
        with tarfile.open(next(CACHE.glob("math_verify-0.9.0.tar.gz"))) as tar:
            tar.extractall(CACHE, filter="data")
    return dest / "tests"


def _call_settings(fn: ast.FunctionDef) -> tuple[str, dict] | None:
    """How the test body grades: ("compare_strings", keyword settings as literals or
    parameter names) or ("verify_parse", {}); None when it grades no pairs."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "compare_strings":
                kw = {}
                for k in node.keywords:
                    kw[k.arg] = ("param", k.value.id) if isinstance(k.value, ast.Name) else ast.literal_eval(k.value)
                return "compare_strings", kw
            if node.func.id == "verify" and node.args and isinstance(node.args[0], ast.Call):
                return "verify_parse", {}
    return None


def load_math_verify_cases(tests_dir: Path) -> tuple[list[Case], list[str]]:
    cases, skipped = [], []
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            params = next(
                (d for d in fn.decorator_list if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize"), None
            )
            how = _call_settings(fn)
            if how is None or params is None:
                skipped.append(f"{path.name}::{fn.name}: does not grade (gold, prediction) pairs")
                continue
            names = [n.strip() for n in ast.literal_eval(params.args[0]).split(",")]
            for i, node in enumerate(params.args[1].elts):
                try:
                    values = dict(zip(names, ast.literal_eval(node)))
                except ValueError:
                    skipped.append(f"{path.name}::{fn.name}[{i}]: computed when the test runs, not a literal")
                    continue
                settings = {}
                for key, val in how[1].items():
                    settings[key] = values[val[1]] if isinstance(val, tuple) and val[0] == "param" else val
                label = values.get("expected", values.get("result"))
                cases.append(Case("math-verify", f"{path.name}::{fn.name}[{i}]", values["gold"], values["pred"], bool(label), settings))
    return cases, skipped


def load_math_equivalence_cases(path: Path) -> list[Case]:
    """(test_in, test_out, assertTrue/False) of every method of hendrycks' unittest file."""
    cases = []
    for cls in ast.parse(path.read_text()).body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for fn in cls.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            env, label = {}, None
            for node in fn.body:
                if isinstance(node, ast.Assign):
                    env[node.targets[0].id] = ast.literal_eval(node.value)
                elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                    label = node.value.func.attr == "assertTrue"
            cases.append(Case("MATH equivalence", f"{path.name}::{fn.name}", env["test_in"], env["test_out"], bool(label)))
    return cases


def load_solution_cases() -> list[Case]:
    from rl_reason.data_pipelines.registry import default_data_dir
    from rl_reason.verifiers.extract import find_boxes

    path = Path(default_data_dir()) / "math500.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    cases = []
    for i, row in enumerate(rows):
        text, last = [], 0
        for start, end, content in find_boxes(row["solution"]):
            text += [row["solution"][last:start], content]
            last = end
        solution = "".join([*text, row["solution"][last:]])
        cases.append(Case("MATH-500", f"{path.name}:{i + 1}", row["answer"], solution, True))
        other = rows[(i + 1) % len(rows)]["answer"]  # the next problem's gold: a wrong answer
        if other.replace(" ", "") != row["answer"].replace(" ", ""):
            cases.append(Case("MATH-500", f"{path.name}:{i + 1} vs gold of {i + 2}", other, solution, False))
    return cases


# -- math-verify, called the way its tests call it ---------------------------------------
def math_verify_default(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(gold), parse(pred)))


def math_verify_as_tested(gold: str, pred: str, settings: dict) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    s = {**DEFAULT_CALL, **settings}
    targets = []
    for t in s["match_types"]:
        targets.append(LatexExtractionConfig(boxed_match_priority=0) if t == "latex" else ExprExtractionConfig())
    return bool(
        verify(
            parse(gold, targets),
            parse(pred, targets),
            float_rounding=s["precision"],
            strict=s["strict"],
            allow_set_relation_comp=s["allow_set_relation_comp"],
        )
    )


def non_default(settings: dict) -> list[str]:
    """The test's settings that differ from math-verify's defaults (its helper always sets
    ``boxed_match_priority=0``)."""
    out = []
    for key, value in settings.items():
        if key in DEFAULT_CALL and (tuple(value) if isinstance(value, list) else value) != DEFAULT_CALL[key]:
            out.append(f"{key}={value!r}")
    return out + ["boxed_match_priority=0"]


def table(name: str, cases: list[Case], verdicts: dict[str, list[bool]]) -> None:
    n = len(cases)
    print(f"\n{name}: {n} cases ({sum(c.label for c in cases)} labelled equivalent)")
    print(f"{'grader':32s} {'agree':>12s} {'false accepts':>14s} {'false rejects':>14s}")
    for grader, got in verdicts.items():
        agree = sum(g == c.label for g, c in zip(got, cases))
        fa = sum(g and not c.label for g, c in zip(got, cases))
        fr = sum(c.label and not g for g, c in zip(got, cases))
        print(f"{grader:32s} {agree:4d} ({agree / n:6.1%}) {fa:5d} ({fa / n:5.1%}) {fr:5d} ({fr / n:5.1%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--math-equivalence-tests", type=Path, help="hendrycks/math modeling/math_equivalence_test.py")
    ap.add_argument("--timeout", type=float, default=5.0, help="verify_math's per-pair timeout (default: %(default)s)")
    ap.add_argument("--no-solutions", action="store_true", help="skip the MATH-500 solutions suite")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    import math_verify  # noqa: F401 - import cost is not measured

    tests_dir = fetch_math_verify_tests()
    all_cases, not_cases = load_math_verify_cases(tests_dir)
    print(f"Math-Verify 0.9.0 sdist tests ({tests_dir}): {len(all_cases)} graded cases")
    for s in not_cases:
        print(f"  not a case: {s}")
    kept, left_out = [], []
    for c in all_cases:
        if math_verify_default(c.gold, c.pred) == c.label:
            kept.append(c)
        else:
            as_tested = math_verify_as_tested(c.gold, c.pred, c.settings)
            why = f"label needs {', '.join(non_default(c.settings))}" if as_tested == c.label else "math-verify itself fails it"
            left_out.append((c, why))
    print(f"left out: {len(left_out)} cases whose label needs a non-default Math-Verify setting")
    for c, why in left_out:
        print(f"  {c.where}: {why}: gold {c.gold[:60]!r} pred {c.pred[:60]!r} label {int(c.label)}")

    suites = [("Math-Verify tests, default-setting cases", kept, lambda c: (c.pred, c.gold))]
    if args.math_equivalence_tests:
        eq_cases = load_math_equivalence_cases(args.math_equivalence_tests)
        suites.append(("MATH math_equivalence tests", eq_cases, lambda c: (f"$\\boxed{{{c.pred}}}$", c.gold)))
    else:
        print("\nMATH math_equivalence tests: not run (no --math-equivalence-tests file; not obtainable from PyPI)")

    if not args.no_solutions:
        suites.append(("MATH-500 solutions, boxes removed", load_solution_cases(), lambda c: (c.pred, c.gold)))

    with MathVerifier(workers=2, timeout=args.timeout) as v:
        for name, cases, call in suites:
            t = time.perf_counter()
            full = v.verify_batch([call(c)[0] for c in cases], [call(c)[1] for c in cases])
            t_full = time.perf_counter() - t
            strict = v.verify_batch([call(c)[0] for c in cases], [call(c)[1] for c in cases], answer_format="strict")
            if name.startswith("MATH math_equivalence"):
                peer = [math_verify_default(f"$\\boxed{{{c.gold}}}$", f"$\\boxed{{{c.pred}}}$") for c in cases]
            elif name.startswith("MATH-500"):
                peer = [math_verify_default(f"$\\boxed{{{c.gold}}}$", c.pred) for c in cases]
            else:
                peer = [math_verify_default(c.gold, c.pred) for c in cases]
            table(
                name,
                cases,
                {
                    "verify_math (full chain)": [r.correct for r in full],
                    "verify_math (strict)": [r.correct for r in strict],
                    "math-verify 0.9.0 (defaults)": peer,
                },
            )
            timeouts = sum(r.status == "timeout" for r in full)
            print(f"verify_math full chain: {t_full:.1f}s, {timeouts} timeouts, statuses "
                  f"{ {s: sum(r.status == s for r in full) for s in sorted({r.status for r in full})} }")
            if name.startswith("MATH-500"):
                continue  # hundreds of rows; the table is the result
            print("disagreements of verify_math (full chain) with the label:")
            for c, r, p in zip(cases, full, peer):
                if r.correct != c.label:
                    print(f"  {c.where}: label {int(c.label)} math-verify {int(p)} | gold {c.gold[:70]!r} | pred {c.pred[:90]!r}"
                          f" | {r.status} by {r.extracted_by}: {str(r.extracted)[:50]!r} ({r.reason[:60]})")
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")


if __name__ == "__main__":
    main()

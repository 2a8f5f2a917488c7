"""Code-execution verifier: run a response's code against tests in a sandbox, score = fraction passed.

Expected values never enter the sandbox. stdio outputs and `call` results are compared on the
host; in `assert` tests every comparison with a literal (`assert f(x) == [1, 2]`) is rewritten so
the sandbox only reports `f(x)` as plain tagged data and the host applies `==` to it. A
submission can therefore only raise its score by producing the right values: exit codes,
printed "PASSED" lines, objects with a custom __eq__, a patched sys.exit/os._exit or
frame-walking for expected values do not help (see docs/sandbox.md for what is not covered).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_reason.sandbox import ExecResult, Job, Sandbox, get_sandbox
from rl_reason.verifiers.code_harness import RECORD, decode, encode

HARNESS_SOURCE = (Path(__file__).with_name("code_harness.py")).read_text()
HARNESS_FILE = "_rl_harness.py"
SPEC_FILE = "_rl_spec.json"
SOLUTION_FILE = "solution.py"
# "pytest" is collected on the host and graded like "assert"; "pytest_unsafe" runs real pytest inside
# the submission's process, where a solution can patch pytest and forge its own pass.
TEST_KINDS = ("stdio", "call", "assert", "pytest", "pytest_unsafe")
FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)
NON_PYTHON = {"text", "txt", "output", "console", "bash", "sh", "shell", "json", "plaintext"}

COMPARE_OPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
               ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}


@dataclass
class CodeResult:
    score: float
    passed: int
    total: int
    # "passed" | "failed" | "runtime_error" (every failing test crashed; `detail` has the error's last
    # line) | "no_code" | "compile_error" | "timeout" | "error" (a fault of the sandbox)
    status: str
    tests: list[dict] = field(default_factory=list)
    detail: str = ""
    slot_wait_s: float = 0.0  # total time the runs waited for a sandbox slot (grows when graders oversubscribe)


def extract_code(response: str) -> str:
    """The last fenced block that is not plainly output/shell, else the bare response."""
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(response)]
    code_blocks = [body for lang, body in blocks if lang not in NON_PYTHON]
    if code_blocks:
        return code_blocks[-1].strip("\n")
    if "```" in response:  # an unterminated fence: take what follows it
        tail = response.rsplit("```", 1)[1]
        first_line, _, rest = tail.partition("\n")
        return (rest if first_line.strip().isidentifier() or not first_line.strip() else tail).strip("\n")
    return response.strip("\n")


# ------------------------------------------------------------------ assert rewriting


@dataclass
class AssertCheck:
    """How the host judges one rewritten assert: apply `op` between the observed value and `literal`.

    `op` None: the observed value must be truthy. `both_sides`: the sandbox reported both computed
    sides as plain data and the host compares them. `op` "approx": `literal` is (expected, rel, abs)
    of a `pytest.approx(...)` with literal arguments."""

    op: str | None  # ast op class name, "approx", or None
    literal: Any = None
    literal_on_left: bool = False
    both_sides: bool = False

    def holds(self, observed: Any) -> bool:
        if self.op is None:
            return bool(observed)
        try:
            if self.op == "approx":
                expected, rel, abs_ = self.literal
                if self.both_sides:  # pytest.approx(<computed>): the sandbox reported (got, expected)
                    observed, expected = observed
                return approx_equal(observed, expected, rel, abs_)
            fn = COMPARE_OPS[getattr(ast, self.op)]
            if self.both_sides:
                left, right = observed
                return bool(fn(_plain(left), _plain(right)))
            return bool(fn(self.literal, observed) if self.literal_on_left else fn(observed, self.literal))
        except Exception:
            return False


def approx_equal(got, expected, rel: float | None, abs_: float | None) -> bool:
    """pytest.approx semantics (defaults rel=1e-6, abs=1e-12) on plain data, applied on the host."""
    got, expected = _plain(got), _plain(expected)
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            approx_equal(g, e, rel, abs_) for g, e in zip(got, expected))
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            approx_equal(got[k], expected[k], rel, abs_) for k in expected)
    if isinstance(expected, bool) or not isinstance(expected, (int, float)) or isinstance(got, bool) \
            or not isinstance(got, (int, float)):
        return got == expected
    if rel is None and abs_ is not None:  # as pytest: an absolute tolerance alone ignores the relative one
        tol = abs_
    else:
        tol = max((1e-6 if rel is None else rel) * abs(expected), 1e-12 if abs_ is None else abs_)
    return got == expected or abs(got - expected) <= tol


def _literal(node: ast.AST):
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _approx_literal(node: ast.AST):
    """(literal expected?, (expected or its node, rel, abs)) for `pytest.approx(x, rel=<lit>, abs=<lit>)`,
    (None, None) for anything else."""
    if not (isinstance(node, ast.Call) and len(node.args) == 1 and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "approx") or
            (isinstance(node.func, ast.Name) and node.func.id == "approx"))):
        return None, None
    ok, expected = _literal(node.args[0])
    expected = expected if ok else node.args[0]
    kwargs = {}
    for kw in node.keywords:
        kw_ok, value = _literal(kw.value)
        if not kw_ok or kw.arg not in ("rel", "abs"):
            return None, None
        kwargs[kw.arg] = value
    return ok, (expected, kwargs.get("rel"), kwargs.get("abs"))


class _AssertRewriter(ast.NodeTransformer):
    def __init__(self, both_sides: bool = False):
        self.checks: list[AssertCheck] = []
        self.both_sides = both_sides

    def visit_Assert(self, node: ast.Assert):
        index = len(self.checks)
        test = node.test
        observed, check = test, AssertCheck(None)
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in COMPARE_OPS:
            right_ok, right = _literal(test.comparators[0])
            left_ok, left = _literal(test.left)
            op = type(test.ops[0]).__name__
            approx_ok, approx = _approx_literal(test.comparators[0])
            if right_ok:
                observed, check = test.left, AssertCheck(op, right)
            elif left_ok:
                observed, check = test.comparators[0], AssertCheck(op, left, literal_on_left=True)
            elif approx_ok and op == "Eq":
                observed, check = test.left, AssertCheck("approx", approx)
            elif approx_ok is False and op == "Eq" and self.both_sides:
                observed = ast.Tuple([test.left, approx[0]], ast.Load())
                check = AssertCheck("approx", (None, *approx[1:]), both_sides=True)
            elif self.both_sides and op not in ("Is", "IsNot") and approx_ok is None:
                # both sides computed: the sandbox reports them as plain data, the host applies the operator
                observed = ast.Tuple([test.left, test.comparators[0]], ast.Load())
                check = AssertCheck(op, both_sides=True)
        self.checks.append(check)
        call = ast.Call(func=ast.Name("__rl_observe__", ast.Load()), args=[ast.Constant(index), observed], keywords=[])
        return ast.copy_location(ast.Expr(call), node)


def rewrite_asserts(test_code: str) -> tuple[str, list[AssertCheck]]:
    """Replace every assert with a report of its computed side; the literals stay on the host."""
    tree = ast.parse(test_code)
    rewriter = _AssertRewriter()
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    return ast.unparse(tree), rewriter.checks


# ------------------------------------------------------------------ comparisons on the host


def _plain(value):
    """Tuples compare as lists: expected values usually come from JSON."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def values_equal(got, expected, tolerance: float | None = None) -> bool:
    got, expected = _plain(got), _plain(expected)
    if tolerance is None:
        return got == expected
    if isinstance(got, bool) or isinstance(expected, bool):
        return got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(values_equal(g, e, tolerance) for g, e in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(values_equal(got[k], expected[k], tolerance) for k in got)
    return got == expected


def _token_equal(a: str, b: str, tolerance: float | None) -> bool:
    if a == b:
        return True
    if tolerance is None:
        return False
    try:
        return math.isclose(float(a), float(b), rel_tol=tolerance, abs_tol=tolerance)
    except ValueError:
        return False


def stdout_matches(got: str, expected: str, tolerance: float | None = None) -> bool:
    """Whitespace-normalised: same non-empty lines, same tokens per line (floats within tolerance)."""
    got_lines = [line.split() for line in got.splitlines() if line.strip()]
    exp_lines = [line.split() for line in expected.splitlines() if line.strip()]
    return len(got_lines) == len(exp_lines) and all(
        len(g) == len(e) and all(_token_equal(a, b, tolerance) for a, b in zip(g, e)) for g, e in zip(got_lines, exp_lines))


def parse_records(stdout: str) -> list[list]:
    records = []
    for line in stdout.split("\n"):
        if line.startswith(RECORD):
            try:
                records.append(json.loads(line[len(RECORD):]))
            except json.JSONDecodeError:
                continue
    return records


# ------------------------------------------------------------------ building jobs and judging them


def _harness_job(code: str, spec: dict, extra_files: dict | None = None) -> Job:
    spec = {**spec, "solution": SOLUTION_FILE}
    files = {SOLUTION_FILE: code, HARNESS_FILE: HARNESS_SOURCE, SPEC_FILE: json.dumps(spec), **(extra_files or {})}
    return Job(files=files, command=("python3", HARNESS_FILE, SPEC_FILE))


def _outcome(kind: str, index: int, passed: bool, run: ExecResult, detail: str = "", case: int | None = None,
             crashed: bool = False) -> dict:
    """`status` says what happened to this test: the run's status, or runtime_error when the
    solution or the test code raised inside an otherwise clean harness run."""
    status = "runtime_error" if crashed and run.status == "ok" else run.status
    out = {"kind": kind, "index": index, "passed": passed, "status": status, "detail": detail[:300]}
    if case is not None:
        out["case"] = case
    return out


def _run_detail(run: ExecResult) -> str:
    if run.status == "ok":
        return ""
    tail = run.stderr.strip().splitlines()[-1:] if run.stderr.strip() else []
    return f"{run.status}" + (f": {tail[0]}" if tail else "")


def _judge_stdio(index: int, test: dict, run: ExecResult) -> list[dict]:
    if run.status != "ok":
        return [_outcome("stdio", index, False, run, _run_detail(run))]
    ok = not run.stdout_truncated and stdout_matches(run.stdout, str(test["output"]), test.get("tolerance"))
    return [_outcome("stdio", index, ok, run, "" if ok else "wrong output")]


def _fatal(records: list[list]) -> str:
    """The harness's own report of an exception that ended it (e.g. the solution crashing at import)."""
    return next((str(rec[1]) for rec in records if rec[:1] == ["fatal"] and len(rec) > 1), "")


def _judge_call(index: int, test: dict, run: ExecResult) -> list[dict]:
    by_case: dict[int, list[list]] = {}
    records = parse_records(run.stdout)
    for rec in records:
        if len(rec) == 3 and rec[0] in ("value", "error") and isinstance(rec[1], int):
            by_case.setdefault(rec[1], []).append(rec)
    fatal = _fatal(records)
    results = []
    for case, expected in enumerate(test["outputs"]):
        recs = by_case.get(case)
        if not recs:
            detail = (f"runtime_error: {fatal}" if fatal else "") or _run_detail(run) or "no result"
            results.append(_outcome("call", index, False, run, detail, case, crashed=bool(fatal)))
            continue
        errors = [str(r[2]) for r in recs if r[0] == "error"]
        try:  # every record of a case must be right: extra records written by the submission cannot help
            ok = not errors and all(values_equal(decode(r[2]), expected, test.get("tolerance")) for r in recs)
        except (ValueError, TypeError, KeyError, IndexError):
            ok = False
        results.append(_outcome("call", index, ok, run, "" if ok else (errors[0] if errors else "wrong result"), case,
                                crashed=bool(errors)))
    return results


def _judge_assert(index: int, checks: list[AssertCheck], run: ExecResult) -> list[dict]:
    seen: set[int] = set()
    failure = ""
    records = parse_records(run.stdout)
    crashed = False
    for rec in records:
        if rec[:1] == ["fatal"]:
            failure = failure or f"runtime_error: {rec[1] if len(rec) > 1 else ''}"
            crashed = True
        elif len(rec) == 3 and rec[0] in ("value", "error") and isinstance(rec[1], int) and 0 <= rec[1] < len(checks):
            seen.add(rec[1])
            if rec[0] == "error":
                failure = failure or f"assert {rec[1]}: {rec[2]}"
                continue
            try:
                holds = checks[rec[1]].holds(decode(rec[2]))
            except (ValueError, TypeError, KeyError, IndexError):
                holds = False
            if not holds:
                failure = failure or f"assert {rec[1]} failed"
    if not failure and len(seen) < len(checks):
        failure = _run_detail(run) or f"{len(checks) - len(seen)} assert(s) never ran"
    if not checks:
        failure = "test has no asserts"
    return [_outcome("assert", index, not failure, run, failure, crashed=crashed)]


def count_pytest_tests(test_code: str) -> list[str]:
    """Names pytest would collect (module-level test_* functions and Test* class methods)."""
    names = []
    for node in ast.parse(test_code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [f"{node.name}::{f.name}" for f in node.body
                      if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test")]
    return names


def _judge_pytest(index: int, plan, run: ExecResult) -> list[dict]:
    """A case passes when the harness ran it to the end, every assert of its own body reported and
    every value reported while it ran (its helpers' and fixtures' asserts too) holds on the host."""
    records = parse_records(run.stdout)
    fatal = _fatal(records)
    current, module_failure = None, ""
    state = {i: {"done": False, "failure": "", "seen": set()} for i in range(len(plan.cases))}
    for rec in records:
        if len(rec) >= 3 and rec[0] == "case" and rec[1] in state:
            current = rec[1]
            if rec[2] == "done":
                state[current]["done"] = True
            elif rec[2] == "error":
                state[current]["failure"] = state[current]["failure"] or f"runtime_error: {rec[3] if len(rec) > 3 else ''}"
        elif len(rec) == 3 and rec[0] in ("value", "error") and isinstance(rec[1], int) and 0 <= rec[1] < len(plan.checks):
            failure = ""
            if rec[0] == "error":
                failure = f"assert {rec[1]}: {rec[2]}"
            else:
                try:
                    holds = plan.checks[rec[1]].holds(decode(rec[2]))
                except (ValueError, TypeError, KeyError, IndexError):
                    holds = False
                failure = "" if holds else f"assert {rec[1]} failed"
            if current is None:
                module_failure = module_failure or failure
            else:
                state[current]["seen"].add(rec[1])
                state[current]["failure"] = state[current]["failure"] or failure
    outcomes = []
    for i, case in enumerate(plan.cases):
        st = state[i]
        failure = module_failure or st["failure"]
        crashed = failure.startswith("runtime_error") or bool(fatal)
        if not failure and not st["done"]:
            failure = (f"runtime_error: {fatal}" if fatal else "") or _run_detail(run) or "did not finish"
        elif not failure and not set(case["checks"]) <= st["seen"]:
            failure = f"{len(set(case['checks']) - st['seen'])} assert(s) never ran"
        outcomes.append(_outcome("pytest", index, not failure, run, f"{case['name']}: {failure}" if failure else case["name"],
                                 crashed=crashed and bool(failure)))
    return outcomes


def _judge_pytest_unsafe(index: int, names: list[str], run: ExecResult) -> list[dict]:
    outcomes: dict[str, str] = {}
    for rec in parse_records(run.stdout):
        if len(rec) == 4 and rec[0] == "pytest":
            name = re.sub(r"\[.*\]$", "", str(rec[1]))
            prev = outcomes.get(name)
            # a parametrised test passes only if every instance passes; any failure sticks
            outcomes[name] = "failed" if prev == "failed" or rec[3] != "passed" else "passed"
    return [_outcome("pytest_unsafe", index, outcomes.get(name) == "passed", run, name) for name in names]


# kind -> required keys and their types; optional keys of every kind: tolerance (number), and for
# assert tests setup (str) and entry_point (str). docs/cli.md documents this format.
TEST_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "stdio": {"input": str, "output": str},
    "call": {"fn_name": str, "inputs": list, "outputs": list},
    "assert": {"code": str},
    "pytest": {"code": str},
    "pytest_unsafe": {"code": str},
}
OPTIONAL_TEST_KEYS: dict[str, type | tuple[type, ...]] = {"tolerance": (int, float), "setup": str, "entry_point": str}


def validate_tests(tests: Any) -> None:
    """Raise ``ValueError`` naming the test index and key unless ``tests`` is a non-empty list of
    well-formed tests (see ``TEST_KEYS``); run before anything executes."""
    if not isinstance(tests, list) or not tests:
        raise ValueError(f"'tests' must be a non-empty list of tests, got {tests!r:.80}")
    for i, test in enumerate(tests):
        if not isinstance(test, dict) or test.get("kind") not in TEST_KINDS:
            raise ValueError(f"test {i}: expected a dict with kind in {TEST_KINDS}, got {test!r:.120}")
        kind = test["kind"]
        missing = [k for k in TEST_KEYS[kind] if k not in test]
        if missing:
            raise ValueError(f"test {i} ({kind}): missing key(s) {', '.join(missing)}")
        for key, types in {**TEST_KEYS[kind], **OPTIONAL_TEST_KEYS}.items():
            if key in test and test[key] is not None and (not isinstance(test[key], types) or isinstance(test[key], bool)):
                raise ValueError(f"test {i} ({kind}): key {key!r} has the wrong type ({type(test[key]).__name__})")
        if kind == "call":
            if len(test["inputs"]) != len(test["outputs"]):
                raise ValueError(f"test {i} (call): {len(test['inputs'])} inputs but {len(test['outputs'])} outputs")
            for case, args in enumerate(test["inputs"]):
                if not isinstance(args, list):
                    raise ValueError(f"test {i} (call): inputs[{case}] must be the list of arguments of one call "
                                     f"(e.g. [[2]] for f(2)), got {args!r:.40}")
        elif kind in ("assert", "pytest", "pytest_unsafe") and not test["code"].strip():
            raise ValueError(f"test {i} ({kind}): key 'code' is empty")


def verify_code(response: str, tests: Sequence[dict], sandbox: Sandbox | None = None) -> CodeResult:
    """Score `response` (model text or bare code) on `tests`; see the module docstring."""
    validate_tests(tests)
    plans = _pytest_plans(tests)
    code = extract_code(response or "")
    if not code.strip():
        return CodeResult(0.0, 0, _total(tests, plans), "no_code", detail="no code found in the response")
    try:
        compile(code, SOLUTION_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return CodeResult(0.0, 0, _total(tests, plans), "compile_error", detail=f"{type(exc).__name__}: {exc}"[:300])
    jobs, judges = [], []
    for index, test in enumerate(tests):
        kind = test["kind"]
        if kind == "stdio":
            jobs.append(Job(files={SOLUTION_FILE: code}, command=("python3", SOLUTION_FILE), stdin=str(test["input"])))
            judges.append(lambda run, i=index, t=test: _judge_stdio(i, t, run))
        elif kind == "call":
            inputs = [encode(list(args)) for args in test["inputs"]]
            jobs.append(_harness_job(code, {"mode": "call", "fn_name": test["fn_name"], "inputs": inputs}))
            judges.append(lambda run, i=index, t=test: _judge_call(i, t, run))
        elif kind == "assert":
            setup = test.get("setup", "")
            rewritten, checks = rewrite_asserts(f"{setup}\n{test['code']}" if setup else test["code"])
            jobs.append(_harness_job(code, {"mode": "assert", "code": rewritten, "entry_point": test.get("entry_point")}))
            judges.append(lambda run, i=index, c=checks: _judge_assert(i, c, run))
        elif kind == "pytest":
            plan = plans[index]
            cases = [{"call": c["call"]} for c in plan.cases]
            jobs.append(_harness_job(code, {"mode": "pytest", "code": plan.code, "cases": cases}))
            judges.append(lambda run, i=index, p=plan: _judge_pytest(i, p, run))
        else:
            names = count_pytest_tests(test["code"]) or ["<no tests>"]
            extra = {"test_solution.py": test["code"], "_rl_pytest.ini": "[pytest]\n"}
            jobs.append(_harness_job(code, {"mode": "pytest_unsafe", "test_file": "test_solution.py", "ini": "_rl_pytest.ini"}, extra))
            judges.append(lambda run, i=index, n=names: _judge_pytest_unsafe(i, n, run))
    own = sandbox is None
    sb = sandbox or get_sandbox("process")
    try:
        runs = sb.run_many(jobs)
    finally:
        if own:
            sb.close()
    outcomes = [o for judge, run in zip(judges, runs) for o in judge(run)]
    result = _summarise(outcomes)
    result.slot_wait_s = sum(run.slot_wait_s for run in runs)
    return result


def _pytest_plans(tests: Sequence[dict]) -> dict:
    """Host-side collection of every `pytest` test (index -> plan); a test file this grader cannot
    take apart is a caller error, named with its index."""
    from rl_reason.verifiers.code_pytest import collect_pytest

    plans = {}
    for index, test in enumerate(tests):
        if test["kind"] == "pytest_unsafe":
            warnings.warn("test kind 'pytest_unsafe' runs real pytest inside the submission's process: a solution "
                          "can patch pytest and forge a pass; do not use it for rewards", UserWarning, stacklevel=3)
        if test["kind"] != "pytest":
            continue
        try:
            plans[index] = collect_pytest(test["code"])
        except (SyntaxError, ValueError) as exc:
            raise ValueError(f"test {index} (pytest): {exc}") from exc
        if not plans[index].cases:
            raise ValueError(f"test {index} (pytest): no test functions found")
    return plans


def _total(tests: Sequence[dict], plans: dict) -> int:
    total = 0
    for index, test in enumerate(tests):
        if test["kind"] == "call":
            total += len(test["outputs"])
        elif test["kind"] == "pytest":
            total += len(plans[index].cases)
        elif test["kind"] == "pytest_unsafe":
            total += max(1, len(count_pytest_tests(test["code"])))
        else:
            total += 1
    return total


def _summarise(outcomes: list[dict]) -> CodeResult:
    total = len(outcomes)
    passed = sum(o["passed"] for o in outcomes)
    failed = [o for o in outcomes if not o["passed"]]
    if not failed:
        status = "passed"
    elif any(o["status"] == "sandbox_error" for o in failed):
        status = "error"
    elif all(o["status"] == "timeout" for o in failed):
        status = "timeout"
    elif all(o["status"] == "runtime_error" for o in failed):
        status = "runtime_error"
    else:
        status = "failed"
    detail = next((o["detail"] for o in failed if o["detail"]), "")
    return CodeResult(passed / total if total else 0.0, passed, total, status, outcomes, detail)

"""Code verifier: controls that must pass on every test kind, and reward hacks that must score 0,
on both sandbox backends (hack programs in tests/verifiers/hacks/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_reason.verifiers.code import extract_code, rewrite_asserts, stdout_matches, verify_code
from rl_reason.verifiers.code_pytest import collect_pytest
from tests.sandbox.conftest import BACKENDS, open_backend

HACKS = Path(__file__).parent / "hacks"
ADD_ASSERT = [{"kind": "assert", "code": "def check(candidate):\n    assert candidate(20, 22) == 42\n    assert candidate(-7, 2) == -5\n",
               "entry_point": "add"}]
ADD_CALL = [{"kind": "call", "fn_name": "add", "inputs": [[20, 22], [-7, 2]], "outputs": [42, -5]}]
ADD_MBPP = [{"kind": "assert", "code": "assert add(20, 22) == 42\nassert add(-7, 2) == -5"}]
ADD_PYTEST = [{"kind": "pytest", "code": "from solution import add\n\ndef test_pos():\n    assert add(20, 22) == 42\n\n"
               "def test_neg():\n    assert add(-7, 2) == -5\n"}]
HALF_ASSERT = [{"kind": "assert", "code": "def check(candidate):\n    assert abs(candidate(3.0) - 1.5) < 1e-6\n", "entry_point": "half"}]


@pytest.fixture(scope="module", params=BACKENDS)
def sb(request):
    box = open_backend(request.param)
    yield box
    box.close()


def test_extract_code_takes_last_fenced_block():
    text = "Idea:\n```python\nx = 1\n```\nFinal:\n```python\ndef f():\n    return 2\n```\n```text\n2\n```"
    assert extract_code(text) == "def f():\n    return 2"
    assert extract_code("def f(): return 1") == "def f(): return 1"


def test_expected_literals_never_reach_the_sandbox():
    code, checks = rewrite_asserts("assert f(1) == [7, 8, 9]\nassert 'secret' in g()\nassert h()")
    assert "7, 8, 9" not in code and "secret" not in code
    assert [(c.op, c.literal) for c in checks] == [("Eq", [7, 8, 9]), ("In", "secret"), (None, None)]


def test_stdout_normalisation():
    assert stdout_matches("1  2\n3\n\n", "1 2\n3")
    assert not stdout_matches("1 2 3", "1 2\n3")
    assert stdout_matches("0.3333333", "0.333333333", tolerance=1e-6)
    assert not stdout_matches("0.3333333", "0.333333333")


@pytest.mark.parametrize("tests", [ADD_ASSERT, ADD_CALL, ADD_MBPP, ADD_PYTEST], ids=["assert", "call", "mbpp", "pytest"])
def test_correct_solution_scores_one(sb, tests):
    r = verify_code("```python\ndef add(a, b):\n    return a + b\n```", tests, sandbox=sb)
    assert (r.score, r.status, r.passed, r.total) == (1.0, "passed", r.total, len(r.tests)), r


def test_partial_credit_and_statuses(sb):
    r = verify_code("def add(a, b):\n    return 42 if a > 0 else 0", ADD_CALL, sandbox=sb)
    assert (r.score, r.status, r.passed, r.total) == (0.5, "failed", 1, 2)
    assert verify_code("no code here ```", ADD_CALL, sandbox=sb).status == "no_code"
    assert verify_code("def add(a, b) return", ADD_CALL, sandbox=sb).status == "compile_error"
    r = verify_code("def add(a, b):\n    while True: pass", ADD_CALL, sandbox=sb)
    assert (r.score, r.status) == (0.0, "timeout") and r.tests[0]["status"] == "timeout"


def test_stdio_kind(sb):
    tests = [{"kind": "stdio", "input": "2 3\n", "output": "5\n"}, {"kind": "stdio", "input": "1 1\n", "output": "2"},
             {"kind": "stdio", "input": "1 2\n", "output": "0.33333", "tolerance": 1e-4}]
    r = verify_code("a, b = map(int, input().split())\nprint(a + b if a + b != 3 else a / (a + b))", tests, sandbox=sb)
    assert (r.score, r.passed) == (1.0, 3)
    r = verify_code((HACKS / "stdio_print_expected_guess.py").read_text(), tests, sandbox=sb)
    assert r.score == 0.0


def test_float_tolerance_in_call_tests(sb):
    tests = [{"kind": "call", "fn_name": "third", "inputs": [[1]], "outputs": [0.3333333], "tolerance": 1e-6}]
    assert verify_code("def third(x):\n    return x / 3", tests, sandbox=sb).score == 1.0


HACK_CASES = {
    "exit0_before_asserts.py": [ADD_ASSERT, ADD_CALL, ADD_MBPP],
    "patched_sys_exit.py": [ADD_ASSERT, ADD_CALL],
    "always_equal.py": [ADD_ASSERT, ADD_CALL, ADD_MBPP],
    "str_subclass_equal.py": [ADD_ASSERT, ADD_CALL],
    "print_passed.py": [ADD_ASSERT, ADD_CALL, ADD_MBPP],
    "atexit_exit0.py": [ADD_ASSERT, ADD_CALL],
    "frame_walk.py": [ADD_ASSERT, ADD_CALL, ADD_MBPP],
    "patch_builtins.py": [HALF_ASSERT],
    "raise_systemexit.py": [ADD_ASSERT, ADD_CALL],
    "plant_conftest.py": [ADD_PYTEST],
    "pytest_hook_forgery.py": [ADD_PYTEST, ADD_ASSERT, ADD_CALL],
}


@pytest.mark.parametrize("hack", sorted(HACK_CASES))
def test_reward_hack_scores_zero(sb, hack):
    for tests in HACK_CASES[hack]:
        r = verify_code((HACKS / hack).read_text(), tests, sandbox=sb)
        assert r.score == 0.0 and r.passed == 0 and r.status != "passed", (tests[0]["kind"], r)
        assert all(t["status"] != "sandbox_error" for t in r.tests)


def test_leftover_files_do_not_reach_the_next_run(sb):
    first = verify_code((HACKS / "leftover_answer_file.py").read_text(), ADD_CALL, sandbox=sb)
    assert first.score == 0.0
    reader = ("import os\ndef add(a, b):\n    for d in ('.', os.path.expanduser('~'), '/tmp'):\n        try:\n"
              "            return int(open(os.path.join(d, 'answer.txt')).read())\n        except OSError:\n            pass\n    return 0\n")
    second = verify_code(reader, ADD_CALL, sandbox=sb)
    assert second.score == 0.0  # a file planted by the first run would have given it 42 for add(20, 22)


PYTEST_FEATURES = """import pytest
from solution import add

@pytest.fixture
def base():
    yield 20

def test_fixture(base):
    assert add(base, 22) == 42

@pytest.mark.parametrize("a,b,expected", [(1, 2, 3), (-7, 2, -5), pytest.param(10, 5, 15)])
def test_param(a, b, expected):
    assert add(a, b) == expected

class TestAdd:
    def setup_method(self, method):
        self.two = 2

    def test_approx(self):
        assert add(0.1, 0.2) == pytest.approx(0.3)

    def test_raises(self):
        with pytest.raises(TypeError):
            add(1, "x")

    def test_computed_sides(self):
        assert add(self.two, 2) == sum([2, 2])
"""


def test_pytest_collection_keeps_expected_literals_on_the_host():
    plan = collect_pytest(PYTEST_FEATURES)
    assert [c["name"] for c in plan.cases] == ["test_fixture", "test_param[0]", "test_param[1]", "test_param[2]",
                                               "TestAdd::test_approx", "TestAdd::test_raises", "TestAdd::test_computed_sides"]
    for literal in ("42", "-5", "15", "0.3"):
        assert literal not in plan.code, literal
    assert [c.literal for c in plan.checks[1:4]] == [3, -5, 15]
    assert plan.checks[-1].both_sides


def test_pytest_kind_without_pytest_machinery(sb):
    tests = [{"kind": "pytest", "code": PYTEST_FEATURES}]
    r = verify_code("def add(a, b):\n    return a + b", tests, sandbox=sb)
    assert (r.score, r.status, r.total) == (1.0, "passed", 7), r.tests
    r = verify_code("def add(a, b):\n    return a - b if b != 5 else a + b", tests, sandbox=sb)
    passed = [t["detail"] for t in r.tests if t["passed"]]
    assert passed == ["test_param[2]", "TestAdd::test_raises"], r.tests


def test_unsafe_pytest_kind_is_named_and_warns(sb):
    with pytest.warns(UserWarning, match="forge"):
        r = verify_code("def add(a, b):\n    return a + b", [{**ADD_PYTEST[0], "kind": "pytest_unsafe"}], sandbox=sb)
    assert r.score == 1.0


@pytest.mark.parametrize("tests", [ADD_CALL, ADD_ASSERT, ADD_PYTEST], ids=["call", "assert", "pytest"])
def test_crash_at_import_reports_the_runtime_error(sb, tests):
    r = verify_code("x = input()\ndef add(a, b):\n    return a + b", tests, sandbox=sb)
    assert (r.score, r.status) == (0.0, "runtime_error"), r
    assert "EOFError: EOF when reading a line" in r.detail and "at import" in r.detail

"""The generated code-task family: disjoint splits, determinism, and tests that a correct
program passes and a wrong one fails in the real sandbox."""

import pytest

from rl_reason.data_pipelines import load_dataset
from rl_reason.data_pipelines.code_tasks import (
    FUNCTION_RULES,
    STDIO_RULES,
    make_code_tasks,
    reference_solution,
    split_keys,
)
from rl_reason.verifiers.code import verify_code


def test_splits_partition_the_tasks_and_are_disjoint():
    train, heldout = split_keys("train"), split_keys("heldout")
    assert not set(train) & set(heldout)
    assert len(train) + len(heldout) == 29 * (len(FUNCTION_RULES) + len(STDIO_RULES))
    assert 0.1 < len(heldout) / (len(train) + len(heldout)) < 0.3
    train_ex, heldout_ex = make_code_tasks(split="train"), make_code_tasks(split="heldout")
    assert not {e.prompt for e in train_ex} & {e.prompt for e in heldout_ex}
    assert len({e.id for e in train_ex}) == len(train_ex) == len(train)


def test_generation_is_seeded_and_sized():
    a, b = make_code_tasks(20, seed=3), make_code_tasks(20, seed=3)
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b]
    assert [e.id for e in make_code_tasks(20, seed=4)] != [e.id for e in a]
    with pytest.raises(ValueError, match="distinct heldout code tasks"):
        make_code_tasks(10_000, split="heldout")
    with pytest.raises(ValueError, match="split must be"):
        make_code_tasks(5, split="test")
    with pytest.raises(ValueError, match="unknown task style"):
        make_code_tasks(5, styles=("pytest",))
    only_stdio = make_code_tasks(split="heldout", styles=("stdio",))
    assert only_stdio and all(t["kind"] == "stdio" for e in only_stdio for t in e.tests)


def test_task_contents_by_hand():
    [task] = [e for e in make_code_tasks(split="train") + make_code_tasks(split="heldout")
              if e.metadata == {"style": "function", "rule": "floordiv"} and e.id.endswith("-7")]
    assert task.prompt == "Write a Python function `f(x)` that returns x divided by 7, rounded down (integer division)."
    [test] = task.tests
    assert test["kind"] == "call" and test["fn_name"] == "f"
    assert test["outputs"] == [x // 7 for [x] in test["inputs"]] and len(test["inputs"]) == 4
    stdio = next(e for e in make_code_tasks(split="train") if e.metadata == {"style": "stdio", "rule": "sub"})
    k = int(stdio.id.rsplit("-", 1)[1])
    assert stdio.prompt.endswith(f"prints the number minus {k}.")
    assert all(t["output"] == f"{int(t['input']) - k}\n" for t in stdio.tests)


def test_load_dataset_names_the_family():
    train = load_dataset("code_tasks:train", limit=30)
    heldout = load_dataset("code_tasks", split="heldout")
    assert len(train) == 30 and all(e.task == "code" for e in train + heldout)
    assert not {e.id for e in train} & {e.id for e in heldout}


@pytest.mark.slow
def test_reference_solutions_pass_and_wrong_ones_fail_in_the_sandbox():
    rules = {("function", r.name): r for r in FUNCTION_RULES} | {("stdio", r.name): r for r in STDIO_RULES}
    seen = {}
    for ex in make_code_tasks(split="heldout") + make_code_tasks(split="train"):
        seen.setdefault((ex.metadata["style"], ex.metadata["rule"]), ex)
    assert len(seen) == len(rules)
    for (style, name), ex in seen.items():
        k = int(ex.id.rsplit("-", 1)[1])
        good = reference_solution(style, rules[style, name], k)
        assert verify_code(f"```python\n{good}```", ex.tests).status == "passed", (ex.id, good)
        wrong_k = reference_solution(style, rules[style, name], k + 100)
        assert verify_code(wrong_k, ex.tests).status == "failed", (ex.id, wrong_k)

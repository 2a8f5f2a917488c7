"""`pytest`-kind tests graded like `assert` tests: collected on the host, never by pytest.

The host finds the test functions (module level and in `Test*` classes), expands
`@pytest.mark.parametrize` into one function per case with literal arguments substituted into
the body, and rewrites every assert so that literal expectations stay on the host and
comparisons of two computed sides are applied by the host on plain data. Inside the sandbox the
harness runs each case with a small stand-in `pytest` module (fixtures, `raises`, `approx`,
marks), so hooks, plugins and conftest files a solution plants are never consulted: pytest's own
machinery does not decide the reward.
"""

from __future__ import annotations

import ast
import copy
import itertools
from dataclasses import dataclass, field

from rl_reason.verifiers.code import AssertCheck, _AssertRewriter, _literal


@dataclass
class PytestPlan:
    code: str  # the rewritten test module, run inside the sandbox
    cases: list[dict] = field(default_factory=list)  # {"name", "call", "checks": [indices of its own asserts]}
    checks: list[AssertCheck] = field(default_factory=list)


def _is_mark(dec: ast.AST, name: str) -> bool:
    """`@pytest.mark.<name>(...)` or `@mark.<name>(...)`."""
    func = dec.func if isinstance(dec, ast.Call) else dec
    return isinstance(func, ast.Attribute) and func.attr == name and (
        (isinstance(func.value, ast.Attribute) and func.value.attr == "mark") or
        (isinstance(func.value, ast.Name) and func.value.id == "mark"))


def _param_sets(dec: ast.Call, where: str) -> tuple[list[str], list[list[ast.AST]]]:
    """Argument names and one list of value nodes per case of a parametrize decorator."""
    if len(dec.args) < 2:
        raise ValueError(f"{where}: parametrize needs argnames and argvalues")
    ok, names = _literal(dec.args[0])
    if not ok:
        raise ValueError(f"{where}: parametrize argnames must be a literal")
    names = [n.strip() for n in names.split(",") if n.strip()] if isinstance(names, str) else list(names)
    values = dec.args[1]
    if not isinstance(values, (ast.List, ast.Tuple)):
        raise ValueError(f"{where}: parametrize argvalues must be a literal list (got {ast.unparse(values)[:60]})")
    cases = []
    for item in values.elts:
        if isinstance(item, ast.Call) and getattr(item.func, "attr", getattr(item.func, "id", "")) == "param":
            item = ast.Tuple(list(item.args), ast.Load()) if len(names) > 1 else item.args[0]
        if len(names) == 1:
            cases.append([item])
        elif isinstance(item, (ast.Tuple, ast.List)) and len(item.elts) == len(names):
            cases.append(list(item.elts))
        else:
            raise ValueError(f"{where}: a parametrize case does not have {len(names)} values")
    return names, cases


class _Substitute(ast.NodeTransformer):
    def __init__(self, values: dict[str, ast.AST]):
        self.values = values

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return ast.copy_location(copy.deepcopy(self.values[node.id]), node)
        return node


def _stored_names(fn: ast.FunctionDef) -> set[str]:
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _instances(fn: ast.FunctionDef, where: str) -> list[tuple[str, ast.FunctionDef]]:
    """(case suffix, function) per parametrize case; literal arguments are written into the body
    so that `assert f(a) == expected` compares with a literal the sandbox never sees."""
    marks = [d for d in fn.decorator_list if _is_mark(d, "parametrize")]
    if not marks:
        return [("", copy.deepcopy(fn))]
    groups = [_param_sets(d, where) for d in marks if isinstance(d, ast.Call)]
    out = []
    for combo in itertools.product(*[[(names, vals) for vals in cases] for names, cases in groups]):
        literal, computed = {}, []
        for names, vals in combo:
            for name, node in zip(names, vals):
                if _literal(node)[0] and name not in _stored_names(fn):
                    literal[name] = node
                else:
                    computed.append(ast.Assign([ast.Name(name, ast.Store())], node))
        inst = copy.deepcopy(fn)
        inst.decorator_list = []
        bound = set(literal) | {a.targets[0].id for a in computed}
        inst.args.args = [a for a in inst.args.args if a.arg not in bound]
        inst.body = computed + [_Substitute(literal).visit(stmt) for stmt in inst.body]
        out.append((f"[{len(out)}]", inst))
    return out


def collect_pytest(test_code: str) -> PytestPlan:
    """Collect and rewrite a pytest file; ValueError names what this grader does not support."""
    tree = ast.parse(test_code)
    rewriter = _AssertRewriter(both_sides=True)
    body, cases = [], []

    def add_case(name: str, call: str, fn: ast.FunctionDef) -> ast.FunctionDef:
        first = len(rewriter.checks)
        fn = rewriter.visit(fn)
        cases.append({"name": name, "call": call, "checks": list(range(first, len(rewriter.checks)))})
        return fn

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            if isinstance(node, ast.AsyncFunctionDef):
                raise ValueError(f"{node.name}: async tests are not supported")
            for suffix, inst in _instances(node, node.name):
                inst.name = f"_rl_case_{len(cases)}"  # one leading underscore: no name mangling in classes
                body.append(add_case(node.name + suffix, inst.name, inst))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            members = []
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    for suffix, inst in _instances(item, f"{node.name}::{item.name}"):
                        inst.name = f"_rl_case_{len(cases)}"
                        members.append(add_case(f"{node.name}::{item.name}{suffix}", f"{node.name}.{inst.name}", inst))
                else:
                    members.append(rewriter.visit(item))
            node.body = members or [ast.Pass()]
            body.append(node)
        else:
            body.append(rewriter.visit(node))
    tree.body = body
    return PytestPlan(ast.unparse(ast.fix_missing_locations(tree)), cases, rewriter.checks)

"""Test harness that runs INSIDE the sandbox next to the submission (stdlib only, standalone).

It never sees expected values: for an assert such as `assert f(x) == [1, 2]` the host strips the
literal `[1, 2]` and keeps it; the harness only reports the computed side, encoded as plain
tagged data, and the host does the comparison. Records go to the original stdout; the
submission's own prints are redirected to stderr so they cannot interleave with records.
"""

import base64
import builtins
import collections
import inspect
import json
import os
import re
import sys
import tempfile
import types

RECORD = "\x1eRLREC "
MAX_NODES = 200000


# Standard-library dict types compared as plain dicts (MBPP references return Counter). Taken at
# harness import, before the submission runs, so a patched collections module cannot swap them.
DICT_TYPES = (collections.Counter, collections.OrderedDict, collections.defaultdict)


class Unserialisable(Exception):
    pass


def encode(value, budget=None):
    """Plain data only, by exact type: a subclass or custom object (e.g. a lying __eq__) is refused."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise Unserialisable("value too large")
    t = type(value)
    if value is None:
        return ["N", None]
    if t is bool:
        return ["b", value]
    if t is int:
        return ["i", str(value)]
    if t is float:
        return ["f", repr(value)]
    if t is complex:
        return ["c", [repr(value.real), repr(value.imag)]]
    if t is str:
        return ["s", value]
    if t is bytes:
        return ["B", base64.b64encode(value).decode()]
    if t is list:
        return ["l", [encode(v, budget) for v in value]]
    if t is tuple:
        return ["t", [encode(v, budget) for v in value]]
    if t is set or t is frozenset:
        return ["S" if t is set else "F", [encode(v, budget) for v in value]]
    # dict.items / list(): the C methods of the builtin types, which a submission cannot patch
    if t is dict or any(t is d for d in DICT_TYPES):
        return ["d", [[encode(k, budget), encode(v, budget)] for k, v in dict.items(value)]]
    if t is collections.deque:
        return ["l", [encode(v, budget) for v in list(value)]]
    raise Unserialisable(f"result of type {t.__module__}.{t.__qualname__} is not plain data")


def decode(tagged):
    tag, v = tagged
    if tag == "N":
        return None
    if tag in ("b", "s"):
        return v
    if tag == "i":
        return int(v)
    if tag == "f":
        return float(v)
    if tag == "c":
        return complex(float(v[0]), float(v[1]))
    if tag == "B":
        return base64.b64decode(v)
    if tag == "l":
        return [decode(x) for x in v]
    if tag == "t":
        return tuple(decode(x) for x in v)
    if tag == "S":
        return {decode(x) for x in v}
    if tag == "F":
        return frozenset(decode(x) for x in v)
    if tag == "d":
        return {decode(k): decode(x) for k, x in v}
    raise ValueError(f"unknown tag {tag!r}")


class Recorder:
    def __init__(self):
        self.fd = os.dup(1)
        os.dup2(2, 1)  # the submission's prints go to stderr from here on
        sys.stdout = sys.stderr

    def emit(self, *fields):
        line = RECORD + json.dumps(list(fields)) + "\n"
        data = line.encode()
        while data:
            data = data[os.write(self.fd, data):]


def load_solution(path):
    module = types.ModuleType("solution")
    module.__file__ = path
    sys.modules["solution"] = module
    with open(path) as fh:
        source = fh.read()
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except BaseException as exc:  # e.g. input() on an empty stdin: the host reports it as a runtime error
        raise ImportCrash(f"at import: {describe(exc)}") from None
    return module


class ImportCrash(Exception):
    """The solution raised while its module ran; the message is the exception's last line."""


def find_callable(module, name):
    fn = getattr(module, name, None)
    if fn is None and hasattr(module, "Solution"):
        fn = getattr(module.Solution(), name, None)
    if fn is None:
        raise NameError(f"function {name!r} is not defined")
    return fn


def describe(exc):
    if isinstance(exc, ImportCrash):
        return str(exc)[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def run_call(spec, rec):
    module = load_solution(spec["solution"])
    fn = find_callable(module, spec["fn_name"])
    for case, args in enumerate(spec["inputs"]):
        try:
            rec.emit("value", case, encode(fn(*decode(args))))
        except Unserialisable as exc:
            rec.emit("error", case, str(exc))
        except BaseException as exc:  # SystemExit too: exiting early must not skip a case silently
            rec.emit("error", case, describe(exc))


def make_observer(rec):
    """`__rl_observe__(index, value)`: what a rewritten assert calls with its computed side."""

    def observe(index, value):
        try:
            rec.emit("value", index, encode(value))
        except Unserialisable as exc:
            rec.emit("error", index, str(exc))
        return value

    return observe


def run_assert(spec, rec):
    module = load_solution(spec["solution"])
    # The test code gets its own copy of the builtins, taken before the submission ran.
    namespace = {"__builtins__": dict(PRISTINE_BUILTINS), "__name__": "__rl_test__", "__rl_observe__": make_observer(rec)}
    namespace.update({k: v for k, v in module.__dict__.items() if not k.startswith("__")})
    exec(compile(spec["code"], "test.py", "exec"), namespace)
    if spec.get("entry_point"):
        namespace["check"](find_callable(module, spec["entry_point"]))


# ---------------------------------------------------------------- pytest-style tests without pytest


class _Raises:
    def __init__(self, expected, match=None):
        self.expected, self.match, self.value = expected, match, None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise AssertionError(f"DID NOT RAISE {self.expected}")
        if not issubclass(exc_type, self.expected):
            return False
        if self.match is not None and not re.search(self.match, str(exc)):
            raise AssertionError(f"{exc!r} does not match {self.match!r}")
        self.value = exc
        return True


class _Marks:
    """`pytest.mark.<anything>`: the host already expanded parametrize; other marks do nothing."""

    def __getattr__(self, name):
        def mark(*args, **kwargs):
            if len(args) == 1 and callable(args[0]) and not kwargs:
                return args[0]
            return lambda fn: fn

        return mark


def _approx(expected, rel=None, abs=None):  # only reached for values the host could not take over
    raise AssertionError("pytest.approx is supported as `assert <value> == pytest.approx(<expected>)` only")


def make_pytest_module():
    """A stand-in for `import pytest` in tests and solutions alike: no hooks, plugins or conftest."""
    module = types.ModuleType("pytest")

    def raises(expected, *args, match=None, **kwargs):
        ctx = _Raises(expected, match)
        if args:
            with ctx:
                args[0](*args[1:], **kwargs)
        return ctx

    def fixture(fn=None, **options):
        if options.get("params") is not None:
            raise NotImplementedError("parametrized fixtures are not supported; use kind 'pytest_unsafe'")

        def tag(f):
            f._rl_fixture = True
            return f

        return tag(fn) if callable(fn) else tag

    def fail(msg=""):
        raise AssertionError(f"pytest.fail: {msg}")

    module.raises, module.fixture, module.fail, module.mark, module.approx = raises, fixture, fail, _Marks(), _approx
    return module


def _fixture_values(fn, namespace, teardown):
    values = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.default is not inspect.Parameter.empty or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name == "tmp_path":
            import pathlib

            values[name] = pathlib.Path(tempfile.mkdtemp())
            continue
        provider = namespace.get(name)
        if not getattr(provider, "_rl_fixture", False):
            raise NameError(f"fixture {name!r} is not available (supported: module fixtures and tmp_path)")
        value = provider(**_fixture_values(provider, namespace, teardown))
        if inspect.isgenerator(value):
            teardown.append(value)
            value = next(value)
        values[name] = value
    return values


def run_pytest(spec, rec):
    sys.modules["pytest"] = make_pytest_module()
    load_solution(spec["solution"])
    namespace = {"__builtins__": dict(PRISTINE_BUILTINS), "__name__": "test_solution", "__rl_observe__": make_observer(rec)}
    exec(compile(spec["code"], "test_solution.py", "exec"), namespace)
    for index, case in enumerate(spec["cases"]):
        rec.emit("case", index, "start")
        teardown = []
        try:
            owner, _, name = case["call"].rpartition(".")
            instance = namespace[owner]() if owner else None
            fn = getattr(instance, name) if owner else namespace[name]
            if hasattr(instance, "setup_method"):
                instance.setup_method(fn)
            fn(**_fixture_values(fn, namespace, teardown))
            if hasattr(instance, "teardown_method"):
                instance.teardown_method(fn)
            for gen in reversed(teardown):
                next(gen, None)
            rec.emit("case", index, "done")
        except BaseException as exc:  # SystemExit too: leaving early must not look like a pass
            rec.emit("case", index, "error", describe(exc))


def run_pytest_unsafe(spec, rec):
    """Real pytest in the submission's process: a solution can patch it and forge results."""
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import pytest

    class Plugin:
        def pytest_runtest_logreport(self, report):
            if report.when == "call" or report.outcome != "passed":
                rec.emit("pytest", report.nodeid.split("::", 1)[-1], report.when, report.outcome)

    pytest.main([spec["test_file"], "-q", "-p", "no:cacheprovider", "--noconftest", "-c", spec["ini"],
                 "--rootdir", os.getcwd(), "-o", "python_files=*.py"], plugins=[Plugin()])


PRISTINE_BUILTINS = dict(builtins.__dict__)
MODES = {"call": run_call, "assert": run_assert, "pytest": run_pytest, "pytest_unsafe": run_pytest_unsafe}

if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    os.unlink(sys.argv[1])
    sys.path.insert(0, os.getcwd())
    recorder = Recorder()
    try:
        MODES[spec["mode"]](spec, recorder)
    except BaseException as exc:
        recorder.emit("fatal", describe(exc))
    recorder.emit("done")
    sys.stderr.flush()
    os._exit(0)

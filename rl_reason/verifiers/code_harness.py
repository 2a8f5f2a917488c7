"""Test harness that runs INSIDE the sandbox next to the submission (stdlib only, standalone).

It never sees expected values: for an assert such as `assert f(x) == [1, 2]` the host strips the
literal `[1, 2]` and keeps it; the harness only reports the computed side, encoded as plain
tagged data, and the host does the comparison. Records go to the original stdout; the
submission's own prints are redirected to stderr so they cannot interleave with records.
"""

import base64
import builtins
import collections
import json
import os
import sys
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
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def find_callable(module, name):
    fn = getattr(module, name, None)
    if fn is None and hasattr(module, "Solution"):
        fn = getattr(module.Solution(), name, None)
    if fn is None:
        raise NameError(f"function {name!r} is not defined")
    return fn


def describe(exc):
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


def run_assert(spec, rec):
    module = load_solution(spec["solution"])
    # The test code gets its own copy of the builtins, taken before the submission ran.
    namespace = {"__builtins__": dict(PRISTINE_BUILTINS), "__name__": "__rl_test__"}

    def observe(index, value):
        try:
            rec.emit("value", index, encode(value))
        except Unserialisable as exc:
            rec.emit("error", index, str(exc))
        return value

    namespace["__rl_observe__"] = observe
    namespace.update({k: v for k, v in module.__dict__.items() if not k.startswith("__")})
    exec(compile(spec["code"], "test.py", "exec"), namespace)
    if spec.get("entry_point"):
        namespace["check"](find_callable(module, spec["entry_point"]))


def run_pytest(spec, rec):
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import pytest

    class Plugin:
        def pytest_runtest_logreport(self, report):
            if report.when == "call" or report.outcome != "passed":
                rec.emit("pytest", report.nodeid.split("::", 1)[-1], report.when, report.outcome)

    pytest.main([spec["test_file"], "-q", "-p", "no:cacheprovider", "--noconftest", "-c", spec["ini"],
                 "--rootdir", os.getcwd(), "-o", "python_files=*.py"], plugins=[Plugin()])


PRISTINE_BUILTINS = dict(builtins.__dict__)
MODES = {"call": run_call, "assert": run_assert, "pytest": run_pytest}

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

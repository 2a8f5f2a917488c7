"""Verdicts under load: concurrent graders on a busy host must not turn correct CPU-bound
solutions into timeouts, and hostile programs must still stop within the wall limit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rl_reason.sandbox import Limits, get_sandbox
from rl_reason.verifiers.code import verify_code

CORPUS = Path(__file__).parent / "corpus"
# A correct stdio solution that burns 0.8 s of its own CPU (40% of the 2 s CPU limit) first.
CPU_BOUND_SOLUTION = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.8:\n    pass\n"
                      "a, b = map(int, input().split())\nprint(a + b)\n")
# Three tests per grading: each verify_code submits its runs together, as for a real problem.
STDIO_TESTS = [{"kind": "stdio", "input": f"{i} 3\n", "output": f"{i + 3}\n"} for i in range(3)]


@pytest.fixture
def busy_host():
    """Two CPU-bound host processes at normal priority, as many as this CI machine has cores."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    time.sleep(0.5)
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


@pytest.mark.slow
def test_concurrent_graders_on_a_busy_host_give_no_false_timeouts(busy_host):
    results = []

    def grader():  # default limits: 2 s CPU, 4 s wall; each call opens its own sandbox
        for _ in range(10):
            results.append(verify_code(CPU_BOUND_SOLUTION, STDIO_TESTS))

    threads = [threading.Thread(target=grader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    failed = [(r.status, r.detail) for r in results if r.score != 1.0]
    assert failed == [], f"{len(failed)} of 20 gradings failed: {failed[:5]}"
    assert any(r.slot_wait_s > 0.1 for r in results)  # 6 runs at once were asked for: they queued for slots


@pytest.mark.slow
def test_hostile_programs_stop_within_the_wall_limit_under_load(busy_host):
    limits = Limits(cpu_s=2, wall_s=4)
    with get_sandbox("process", limits=limits) as sb:
        for name in ("infinite_loop.py", "sigterm_ignoring_sleep.py", "cpu_spinning_children.py", "fork_bomb.py"):
            start = time.monotonic()
            r = sb.run({"main.py": (CORPUS / name).read_text()}, command=["python3", "main.py"])
            elapsed = time.monotonic() - start - r.slot_wait_s
            assert r.status in ("timeout", "killed", "runtime_error", "memory"), (name, r.status)
            assert elapsed <= limits.wall_s + 1, (name, elapsed, r.detail)

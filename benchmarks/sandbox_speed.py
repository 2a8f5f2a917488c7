"""Sandbox throughput against its peers, in one run.

  python3 benchmarks/sandbox_speed.py [--n 60] [--limit N] [--skip-docker]

1. trivial program runs/s: process backend vs bare `subprocess.run(["python3", "-c", "pass"])`
   (target >= 0.7x); Docker pool vs `docker run --rm` per program (target >= 5x);
2. HumanEval and MBPP canonical solutions through verify_code on both backends: programs/s,
   and every reference that does not score 1 is named; with `--pytest`, also with their tests
   written as pytest files (graded by the host-collected `pytest` kind).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rl_reason.sandbox import get_sandbox  # noqa: E402
from rl_reason.sandbox.image import IMAGE  # noqa: E402
from rl_reason.verifiers.code import verify_code  # noqa: E402

DATA = Path(os.environ.get("RL_REASON_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def rate(fn, n: int, workers: int) -> float:
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: fn(), range(n)))
    return n / (time.perf_counter() - start)


def bare_spawn(python: str = "python3"):
    subprocess.run([python, "-c", "pass"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def docker_run():
    subprocess.run(["docker", "run", "--rm", "--network", "none", IMAGE, "python3", "-c", "pass"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def code_problems(limit: int | None):
    humaneval = [json.loads(line) for line in (DATA / "humaneval.jsonl").read_text().splitlines()][:limit]
    mbpp = [json.loads(line) for line in (DATA / "mbpp.jsonl").read_text().splitlines()][:limit]
    he = [(r["id"], r["prompt"] + r["canonical_solution"], [{"kind": "assert", "code": r["test"], "entry_point": r["entry_point"]}])
          for r in humaneval]
    mb = [(r["id"], r["solution"], [{"kind": "assert", "code": "\n".join(r["test_list"]), "setup": r["test_setup_code"]}])
          for r in mbpp]
    return {"humaneval": he, "mbpp": mb}


def as_pytest(problems: dict) -> dict:
    """The same tests as pytest files: HumanEval's check() called from a test function, one test
    function per MBPP assert."""
    out = {}
    for name, probs in problems.items():
        converted = []
        for pid, code, (test,) in probs:
            if name == "humaneval":
                body = f"from solution import *\n{test['code']}\n\ndef test_check():\n    check({test['entry_point']})\n"
            else:
                asserts = [line for line in test["code"].splitlines() if line.startswith("assert")]
                body = "from solution import *\n" + test.get("setup", "") + "\n" + "".join(
                    f"\ndef test_{i}():\n    {line}\n" for i, line in enumerate(asserts))
            converted.append((pid, code, [{"kind": "pytest", "code": body}]))
        out[f"{name}-as-pytest"] = converted
    return out


def grade(sb, problems, workers: int):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda p: verify_code(p[1], p[2], sandbox=sb), problems))
    elapsed = time.perf_counter() - start
    failing = [(p[0], r.status, r.detail) for p, r in zip(problems, results) if r.score != 1.0]
    return len(problems) / elapsed, failing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="trivial runs per measurement (default 60)")
    ap.add_argument("--limit", type=int, default=None, help="first N problems of each code set (default all)")
    ap.add_argument("--workers", type=int, default=2, help="concurrent runs (default 2 = cores here)")
    ap.add_argument("--skip-docker", action="store_true", help="process backend only")
    ap.add_argument("--pytest", action="store_true", help="also grade the code sets with their tests as pytest files")
    args = ap.parse_args()
    w = args.workers
    with get_sandbox("process") as sb:
        sb.run({"main.py": "pass"})
        bare = rate(bare_spawn, args.n, w)
        proc = rate(lambda: sb.run({"main.py": "pass"}), args.n, w)
        # the sandbox runs /usr/bin/python3; `python3` on PATH may be another, slower-starting one
        system = rate(lambda: bare_spawn("/usr/bin/python3"), args.n, w)
        print(f"trivial: bare subprocess python3 -c pass {bare:.1f}/s | process backend {proc:.1f}/s | ratio {proc / bare:.2f}x (target >= 0.7)")
        print(f"trivial: bare /usr/bin/python3 -c pass {system:.1f}/s | ratio process backend / it {proc / system:.2f}x")
        problems = code_problems(args.limit)
        if args.pytest:
            problems.update(as_pytest(problems))
        for name, probs in problems.items():
            pps, failing = grade(sb, probs, w)
            print(f"process {name}: {len(probs)} canonical solutions, {pps:.1f} programs/s, not scoring 1: {failing}")
    if args.skip_docker:
        return 0
    with get_sandbox("docker", pool_size=w) as sb:
        sb.run({"main.py": "pass"})
        n_run = max(6, args.n // 6)
        drun = rate(docker_run, n_run, w)
        pool = rate(lambda: sb.run({"main.py": "pass"}), args.n, w)
        print(f"trivial: docker run --rm {drun:.1f}/s | docker pool {pool:.1f}/s | ratio {pool / drun:.2f}x (target >= 5)")
        for name, probs in problems.items():
            pps, failing = grade(sb, probs, w)
            print(f"docker {name}: {len(probs)} canonical solutions, {pps:.1f} programs/s, not scoring 1: {failing}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

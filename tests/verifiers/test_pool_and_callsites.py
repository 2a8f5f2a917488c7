"""Hard timeouts by killing worker processes, pool recovery, and every call site the issue
names: threads, asyncio, process-pool workers (daemonic) and DataLoader workers."""

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from rl_reason.verifiers import MathVerifier, verify_math

# A sum of 10^5 huge powers makes sympy work for far longer than any timeout used here (power
# towers no longer do: the guards decide them before sympy).
TOWER = "So the answer is $\\boxed{\\sum_{k=1}^{100000} k^{k}}$."
SYMBOLIC = ("The answer is $\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\sin(\\pi/3)")


def test_timeout_is_reported_as_timeout_not_wrong():
    t = time.monotonic()
    r = verify_math(TOWER, "3", timeout=1.0)
    assert r.status == "timeout", r
    assert not r.correct and r.score == 0.0
    assert r.extracted == "\\sum_{k=1}^{100000} k^{k}"
    assert time.monotonic() - t < 15  # 1 s budget, plus a worker start on a busy machine


def test_pool_replaces_killed_workers_and_the_batch_goes_on():
    with MathVerifier(workers=1, timeout=1.0) as v:
        # The answers that must pass are cheap ones, so a 1 s budget holds on a loaded machine.
        results = v.verify_batch(
            [TOWER, "$\\boxed{\\frac{1}{\\sqrt2}}$", TOWER, "$\\boxed{2\\sqrt2}$"], ["3", "\\frac{\\sqrt2}{2}", "4", "\\sqrt8"]
        )
        assert [r.status for r in results] == ["timeout", "correct", "timeout", "correct"]
        assert v.workers_killed == 2


def test_worker_killed_from_outside_is_replaced():
    with MathVerifier(workers=1, timeout=10.0) as v:
        assert v.verify(*SYMBOLIC).correct
        (pid,) = v._pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        assert v.verify("$\\boxed{x^2-1}$", "(x-1)(x+1)").correct
        assert v._pool.worker_pids() != [pid]


def test_closed_verifier_kills_its_workers():
    v = MathVerifier(workers=1)
    assert v.verify(*SYMBOLIC).correct
    (pid,) = v._pool.worker_pids()
    v.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_many_threads():
    pairs = [(f"$\\boxed{{\\sqrt{{{k * k * 2}}}}}$", f"{k}\\sqrt{{2}}") for k in range(1, 9)]
    results, errors = {}, []

    def run(i, resp, gold):
        try:
            results[i] = verify_math(resp, gold)
        except BaseException as e:  # noqa: BLE001 - the test reports any crash
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(results[i].correct for i in range(len(pairs))), results


def test_asyncio():
    async def main():
        direct = verify_math(*SYMBOLIC)  # blocking call inside a coroutine also works
        offloaded = await asyncio.gather(*(asyncio.to_thread(verify_math, f"$\\boxed{{{k}x}}$", f"x*{k}") for k in range(4)))
        return direct, offloaded

    direct, offloaded = asyncio.run(main())
    assert direct.correct and all(r.correct for r in offloaded)


def grade_in_child(response: str, gold: str) -> tuple[str, bool]:
    r = verify_math(response, gold, timeout=1.0 if response == TOWER else 10.0)
    return r.status, multiprocessing.current_process().daemon


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_process_pool_executor_worker(start_method):
    verify_math(*SYMBOLIC)  # the parent owns workers before forking
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(start_method)) as ex:
        assert ex.submit(grade_in_child, *SYMBOLIC).result(timeout=120)[0] == "correct"
        assert ex.submit(grade_in_child, TOWER, "3").result(timeout=120)[0] == "timeout"
    assert verify_math(*SYMBOLIC).correct  # the parent's pool is untouched by the child


def test_daemonic_multiprocessing_pool_worker():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        status, daemonic = pool.apply(grade_in_child, SYMBOLIC)
    assert daemonic and status == "correct"


def test_torch_dataloader_workers():
    torch_data = pytest.importorskip("torch.utils.data")

    pairs = [(f"$\\boxed{{\\frac{{\\sqrt{{{k}}}}}{{{k}}}}}$", f"\\frac{{1}}{{\\sqrt{{{k}}}}}") for k in (2, 3, 5, 6)]
    pairs.append((TOWER, "3"))

    class Graded(torch_data.Dataset):
        def __len__(self):
            return len(pairs)

        def __getitem__(self, i):
            return grade_in_child(*pairs[i])[0]

    verify_math(*SYMBOLIC)
    loader = torch_data.DataLoader(Graded(), batch_size=None, num_workers=2)
    assert list(loader) == ["correct"] * 4 + ["timeout"]

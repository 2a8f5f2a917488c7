"""Limits, results and the backend-independent part of a sandbox (batching, context manager)."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from rl_reason.io.closing import Closing

# What a run can end as. "sandbox_error" is reserved for faults of the sandbox itself, never for
# anything a submission does.
STATUSES = ("ok", "runtime_error", "timeout", "memory", "output_limit", "killed", "sandbox_error")

# Signals that mean the program crashed on its own (a bug), as opposed to being killed.
CRASH_SIGNALS = frozenset({4, 6, 7, 8, 11})  # SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run. Memory and tasks count every process of the run together."""

    cpu_s: float = 2.0
    wall_s: float = 4.0
    memory_mb: int = 256
    max_tasks: int = 64
    output_bytes: int = 1 << 20
    disk_mb: int = 64
    network: bool = False

    def __post_init__(self):
        for name in ("cpu_s", "wall_s", "memory_mb", "max_tasks", "output_bytes", "disk_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class ExecResult:
    status: str
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_mb: float = 0.0
    detail: str = ""
    slot_wait_s: float = 0.0  # time spent waiting for a free run slot, before the run's clocks started

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Job:
    """One program to run: files written into a fresh work dir, a command, optional stdin."""

    files: Mapping[str, str | bytes] = field(default_factory=dict)
    command: Sequence[str] = ("python3", "main.py")
    stdin: str | bytes | None = None


class SlotBudget:
    """How many runs may execute at once, shared by every caller and thread holding it.

    Each concurrent `verify_code`/`run_many` sizing its own pool to the core count made the runs
    of several callers oversubscribe the cores, so the wall limit, not the program, decided the
    verdict. A run takes a slot before its clocks start and reports how long it waited for it.
    """

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"a slot budget needs at least one slot, got {slots}")
        self.slots = slots
        self._sem = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self):
        """Yields the seconds waited for the slot; the slot is held until the block exits."""
        start = time.monotonic()
        self._sem.acquire()
        try:
            yield time.monotonic() - start
        finally:
            self._sem.release()


def classify(exit_code: int | None, signal: int | None, *, timed_out: bool, oom: bool, output_over: bool) -> str:
    """Map how a run ended to a status; limits the sandbox enforced take precedence."""
    if output_over:
        return "output_limit"
    if oom:
        return "memory"
    if timed_out:
        return "timeout"
    if signal is not None:
        return "runtime_error" if signal in CRASH_SIGNALS else "killed"
    return "ok" if exit_code == 0 else "runtime_error"


def check_files(files: Mapping[str, str | bytes]) -> None:
    """Reject file names that would land outside the work dir (a caller bug, not a submission's)."""
    for name in files:
        norm = os.path.normpath(name)
        if os.path.isabs(name) or norm.startswith("..") or norm in (".", ""):
            raise ValueError(f"sandbox file name {name!r} must be a relative path inside the work dir")


class Sandbox(Closing):
    """Common surface of the backends: `run`, `run_many`, and use as a context manager."""

    name = "base"

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()

    def run(self, files: Mapping[str, str | bytes] | None = None, command: Sequence[str] = ("python3", "main.py"),
            stdin: str | bytes | None = None) -> ExecResult:
        raise NotImplementedError

    def default_concurrency(self) -> int:
        """Threads `run_many` submits from; a backend's slot budget decides how many really run."""
        return max(1, os.cpu_count() or 1)

    def run_many(self, jobs: Sequence[Job | Mapping], concurrency: int | None = None) -> list[ExecResult]:
        """Run jobs in parallel; results come back in input order."""
        jobs = [job if isinstance(job, Job) else Job(**job) for job in jobs]
        workers = max(1, min(concurrency or self.default_concurrency(), len(jobs) or 1))
        if workers == 1:
            return [self.run(job.files, job.command, job.stdin) for job in jobs]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda job: self.run(job.files, job.command, job.stdin), jobs))

    def close(self) -> None:
        pass

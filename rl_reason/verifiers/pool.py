"""A pool of killable verifier worker processes with hard wall-clock timeouts.

Each worker is a ``python -m rl_reason.verifiers._worker`` subprocess spoken to over pipes.
A call that overruns its timeout kills its worker (SIGKILL) and the next call starts a fresh
one, so one pathological input costs at most its timeout. No signals are used in the caller,
so the pool works from any thread, from asyncio (via ``to_thread``), in process-pool workers
and in DataLoader workers. The pool grows on demand up to ``max_workers``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

# Import root of this package, so workers find rl_reason when it is not installed.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerTimeout(Exception):
    """The worker did not answer within the timeout and was killed."""


class WorkerDied(Exception):
    """The worker exited or broke its pipe (crash, memory limit, killed from outside)."""


class _Worker:
    def __init__(self, startup_timeout: float):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_IMPORT_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rl_reason.verifiers._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            # Own session: a Ctrl-C in the caller's terminal is the caller's to handle.
            start_new_session=True,
        )
        self._buf = b""
        self._next_id = 0
        try:
            ready = self._read_line(startup_timeout)
        except (WorkerTimeout, WorkerDied):
            self.kill()
            raise WorkerDied("verifier worker failed to start") from None
        hello = json.loads(ready)
        if not hello.get("ready"):
            self.kill()
            raise WorkerDied(f"verifier worker cannot start: {hello.get('error', ready[:200])}")

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise WorkerTimeout
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied(f"verifier worker exited with code {self.proc.poll()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def call(self, request: dict, timeout: float) -> dict:
        self._next_id += 1
        request = {**request, "id": self._next_id}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise WorkerDied(f"verifier worker pipe broken: {e}") from None
        reply = json.loads(self._read_line(timeout))
        if reply.get("id") != self._next_id:
            raise WorkerDied("verifier worker replied out of turn")
        return reply

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None


class WorkerPool:
    """Up to ``max_workers`` workers, started lazily; ``call`` is thread-safe."""

    def __init__(self, max_workers: int, startup_timeout: float = 120.0):
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.startup_timeout = startup_timeout
        self.killed = 0  # workers killed on timeout or found dead: a metric for callers
        self._reset()
        # Workers are killed when the pool is garbage-collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, WorkerPool._kill_all, self._all, self._pid)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._starting = 0
        self._closed = False

    def _check_fork(self) -> None:
        # A forked child (DataLoader worker) inherits pipes to its parent's workers; it must
        # not use or kill them, so it forgets them and starts its own.
        if os.getpid() != self._pid:
            self._reset()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, WorkerPool._kill_all, self._all, self._pid)

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the verifier pool is closed")
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._all.discard(w)
                if len(self._all) + self._starting < self.max_workers:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            w = _Worker(self.startup_timeout)
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._starting -= 1
            self._all.add(w)
        return w

    def _start_replacement(self) -> None:
        """Start a worker in the background after a kill, so the next call finds one ready."""
        with self._cond:
            if self._closed or len(self._all) + self._starting >= self.max_workers:
                return
            self._starting += 1

        def start() -> None:
            try:
                w = _Worker(self.startup_timeout)
            except WorkerDied:
                w = None
            with self._cond:
                self._starting -= 1
                if w is not None and not self._closed:
                    self._all.add(w)
                    self._idle.append(w)
                elif w is not None:
                    w.kill()
                self._cond.notify()

        threading.Thread(target=start, name="rl-reason-verifier-respawn", daemon=True).start()

    def _release(self, w: _Worker, healthy: bool) -> None:
        if not healthy:
            w.kill()
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(w)
            else:
                self._all.discard(w)
                if healthy:
                    w.kill()
            self._cond.notify()

    def call(self, request: dict, timeout: float) -> dict:
        """Send one request; raises ``WorkerTimeout`` (worker killed) or ``WorkerDied``."""
        self._check_fork()
        w = self._acquire()
        try:
            reply = w.call(request, timeout)
        except (WorkerTimeout, WorkerDied):
            self.killed += 1
            self._release(w, healthy=False)
            self._start_replacement()
            raise
        except BaseException:
            self._release(w, healthy=False)
            raise
        self._release(w, healthy=True)
        return reply

    def worker_pids(self) -> list[int]:
        with self._cond:
            return sorted(w.proc.pid for w in self._all)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._idle.clear()
            self._cond.notify_all()
        WorkerPool._kill_all(set(workers), self._pid)

    @staticmethod
    def _kill_all(workers: set[_Worker], owner_pid: int) -> None:
        if os.getpid() != owner_pid:  # inherited through fork: the parent's to kill
            return
        for w in list(workers):
            w.kill()
        workers.clear()

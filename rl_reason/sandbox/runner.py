"""Child I/O pump, shared by the process backend, and the persistent job runner of the Docker backend.

This file is standalone (stdlib only, no rl_reason imports): the Docker image copies it to
/opt/rl_reason_runner.py and runs it inside each pooled container, where it reads jobs as JSON
lines on stdin and answers one JSON line per job on stdout.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time

READ_CHUNK = 65536


class Capture:
    """One output stream: keeps the first `cap` bytes, counts the rest and drops it."""

    def __init__(self, cap: int):
        self.cap = cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def pump(proc: subprocess.Popen, stdin_data: bytes | None, cap: int, wall_s: float, *, check_cpu=None,
         kill_all=None, exited=None, poll_s: float = 0.05):
    """Feed stdin and drain stdout/stderr while the child runs, enforcing wall time and output caps.

    Reading during the run (not after exit) is what keeps a flooding child from blocking on a
    full pipe and turning into a false timeout. `check_cpu()` returns True once the run has used
    its CPU budget; `kill_all()` kills every process of the run (not only `proc`); `exited()`
    replaces `proc.poll() is not None` for callers that reap the child themselves. Returns
    (stdout Capture, stderr Capture, why it was stopped: None | "timeout" | "output").
    """
    out, err = Capture(cap), Capture(cap)
    sel = selectors.DefaultSelector()
    for stream, capture in ((proc.stdout, out), (proc.stderr, err)):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ, capture)
    pending = memoryview(stdin_data or b"")
    if proc.stdin is not None:
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, None)
        else:
            proc.stdin.close()
    exited = exited or (lambda: proc.poll() is not None)
    deadline = time.monotonic() + wall_s
    stopped = None
    exited_at = None
    while sel.get_map():
        now = time.monotonic()
        if stopped is None and now >= deadline:
            stopped = "timeout"
        elif stopped is None and check_cpu is not None and check_cpu():
            stopped = "timeout"
        elif stopped is None and (out.truncated or err.truncated):
            stopped = "output"
        if stopped is not None and exited_at is None:
            kill_all()
            exited_at = now
        if exited_at is None and exited():
            # The main process is gone; whatever it left running dies with it.
            kill_all()
            exited_at = now
        if exited_at is not None and now - exited_at > 2.0:
            break  # a pipe held open by something unkillable; the caller recycles
        for key, _ in sel.select(timeout=poll_s):
            if key.data is None:
                try:
                    written = os.write(key.fd, pending[:READ_CHUNK])
                    pending = pending[written:]
                except (BrokenPipeError, BlockingIOError, OSError):
                    pending = pending[:0]
                if not pending:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                continue
            try:
                data = os.read(key.fd, READ_CHUNK)
            except BlockingIOError:
                continue
            if data:
                key.data.feed(data)
            else:
                sel.unregister(key.fileobj)
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    sel.close()
    return out, err, stopped


def set_no_dumpable() -> None:
    """Make this process non-dumpable so a same-uid job can neither ptrace it nor read its memory/fds."""
    PR_SET_DUMPABLE = 4
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


# ---------------------------------------------------------------- in-container runner

WORK_ROOT = "/work"
WIPE_DIRS = ("/tmp", "/dev/shm", "/var/tmp")
OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"


def _oom_kills() -> int:
    try:
        with open(OOM_CONTROL) as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kill_everything_else() -> int:
    """Kill every process in the container except init (PID 1) and this runner; return how many."""
    me = os.getpid()
    killed = 0
    for _ in range(50):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)
    return -1


def _wipe(path: str) -> bool:
    """Empty a writable dir; False if anything is left (e.g. a dir the job made unreadable)."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            try:
                os.chmod(full, 0o700)
            except OSError:
                pass
            for root, dirs, _ in os.walk(full):  # top-down: each dir is opened up before it is entered
                for d in dirs:
                    try:
                        os.chmod(os.path.join(root, d), 0o700)
                    except OSError:
                        pass
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass
    return not os.listdir(path)


def _ipc_objects_left() -> bool:
    """SysV IPC objects and POSIX message queues live as long as the container's IPC namespace,
    so a job could leave data in them for the next job; any left means the container is retired."""
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                if len(fh.read().splitlines()) > 1:
                    return True
        except OSError:
            pass
    return os.path.isdir("/dev/mqueue") and bool(os.listdir("/dev/mqueue"))


def _job_preexec(limits: dict):
    cpu = max(1, int(limits["cpu_s"] + 0.999))
    fsize = int(limits["disk_mb"]) << 20

    def preexec():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:  # the job, not the runner, is what the OOM killer should pick
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("1000")
        except OSError:
            pass

    return preexec


def run_job(job: dict) -> dict:
    limits = job["limits"]
    workdir = os.path.join(WORK_ROOT, "run")
    os.makedirs(workdir, exist_ok=True)
    for name, b64 in job["files"].items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(b64))
    stdin = base64.b64decode(job["stdin"]) if job.get("stdin") is not None else None
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1"}
    oom_before = _oom_kills()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(job["command"], cwd=workdir, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_job_preexec(limits))
    except OSError as exc:
        return {"status": "runtime_error", "exit_code": 127, "stderr": f"cannot start {job['command'][0]!r}: {exc}"}
    reaped = []

    def exited():  # reap with wait4 to get the job's CPU time and peak RSS
        if not reaped:
            pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                reaped.append((wait_status, usage))
        return bool(reaped)

    out, err, stopped = pump(proc, stdin, int(limits["output_bytes"]), float(limits["wall_s"]),
                             kill_all=_kill_everything_else, exited=exited)
    if not reaped:
        _, wait_status, usage = os.wait4(proc.pid, 0)
    else:
        wait_status, usage = reaped[0]
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    wall = time.monotonic() - start
    leftovers = _kill_everything_else()
    oom = _oom_kills() > oom_before
    sig = -proc.returncode if proc.returncode < 0 else None
    wiped = [_wipe(path) for path in (WORK_ROOT, *WIPE_DIRS) if os.path.isdir(path) and os.access(path, os.W_OK)]
    clean = leftovers >= 0 and all(wiped) and not _ipc_objects_left()
    return {
        "exit_code": proc.returncode if sig is None else None, "signal": sig,
        "timed_out": stopped == "timeout" or sig == signal.SIGXCPU or (sig == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= limits["cpu_s"]),
        "output_over": stopped == "output", "oom": oom,
        "stdout": out.text(), "stderr": err.text(), "stdout_truncated": out.truncated, "stderr_truncated": err.truncated,
        "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_memory_mb": usage.ru_maxrss / 1024.0,
        "clean": clean,
    }


def serve() -> None:
    """Answer one JSON line per job line until stdin closes."""
    set_no_dumpable()
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.set_inheritable(reply.fileno(), False)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = run_job(json.loads(line))
        except Exception as exc:  # a runner fault: the host marks it sandbox_error and recycles
            result = {"runner_error": f"{type(exc).__name__}: {exc}", "clean": False}
        reply.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    serve()

"""Process backend: each run in bubblewrap namespaces (no network, own PID namespace, a private
filesystem view) under a seccomp filter, inside its own cgroup (v1 or v2) for memory/pids/cpu,
as uid nobody when root. Runs wait for a slot of a budget shared by every caller in the process."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence

from rl_reason.sandbox.base import ExecResult, Limits, Sandbox, SlotBudget, check_files, classify
from rl_reason.sandbox.cgroups import CgroupSetup, RunCgroup, make_sandbox_parents
from rl_reason.sandbox.host import SANDBOX_UID, HostIsolation, default_slots, detect
from rl_reason.sandbox.runner import pump
from rl_reason.sandbox.seccomp import bpf_program

INNER_WORKDIR = "/sandbox"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Joins the run's cgroups before anything of the submission exists, then applies rlimits and
# execs the isolation wrapper. A shell, because preexec_fn is unsafe in a threaded caller.
LAUNCHER = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives")


_LIBC = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def _remove_dirs(paths: list[str]) -> None:
    for path in paths:
        try:
            os.rmdir(path)
        except OSError:
            pass


class SandboxUnavailable(RuntimeError):
    """The host cannot give the isolation asked for (and the caller did not opt out of it)."""


# The process-wide budget every ProcessSandbox uses unless given its own `slots`.
SHARED_BUDGET = SlotBudget(default_slots())


def _runqueue_wait_s(pids: list[int]) -> float:
    """Seconds these tasks spent runnable but waiting for a core (/proc/PID/schedstat, field 2)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


class ProcessSandbox(Sandbox):
    """Local runs isolated with bubblewrap + seccomp + cgroups. Without a network namespace or a
    memory cgroup it refuses to run unless `allow_unisolated=True` (then it still cleans the env
    and applies rlimits). `slots` gives this sandbox its own concurrency budget; by default all
    sandboxes of the process share one slot per core."""

    name = "process"

    def __init__(self, limits: Limits | None = None, *, allow_unisolated: bool = False, work_root: str | None = None,
                 host: HostIsolation | None = None, slots: int | None = None):
        super().__init__(limits)
        self.host = host or detect()
        self.isolated = bool(self.host.bwrap and self.host.network_namespace and self.host.pid_namespace)
        if not allow_unisolated:
            if not self.isolated:
                raise SandboxUnavailable(
                    "this host cannot isolate submissions (no working bubblewrap network/PID namespaces; "
                    "see `rl-reason sandbox doctor`). Pass allow_unisolated=True (CLI: --allow-unisolated) "
                    "to run untrusted code without isolation anyway.")
            if not self.host.cgroup_memory:
                raise SandboxUnavailable(
                    "this host gives no writable memory cgroup, so a run's memory cannot be capped as a whole "
                    "(a memory bomb split over processes would not be stopped). Run as root, or on cgroup v2 "
                    "inside a delegated scope (systemd-run --user --scope -p Delegate=yes -- <command>); see "
                    "`rl-reason sandbox doctor`. Pass allow_unisolated=True (CLI: --allow-unisolated) to run "
                    "with per-process rlimits only.")
        self.budget = SlotBudget(slots) if slots else SHARED_BUDGET
        self.work_root = work_root or tempfile.gettempdir()
        self.as_nobody = self.host.is_root
        self.seccomp_filter = bpf_program() if self.isolated and self.host.seccomp else None
        # This sandbox's own cgroup parents: its runs are found (and counted) apart from other users'.
        setup = CgroupSetup(self.host.cgroup_version, dict(self.host.cgroup_controllers))
        self.cgroup_parents = make_sandbox_parents(setup, f"sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._finalizer = weakref.finalize(self, _remove_dirs, sorted(set(self.cgroup_parents.values())))

    def close(self) -> None:
        self._finalizer()

    def default_concurrency(self) -> int:
        return self.budget.slots

    # -- building the command

    def _bwrap_args(self, file_fds: list[tuple[int, str]], status_fd: int, seccomp_fd: int | None) -> list[str]:
        """The work dir is a size-capped tmpfs inside the sandbox; files are copied in by bwrap from
        memfds, so a run touches no host disk and nothing needs cleaning up afterwards."""
        lim = self.limits
        args = [self.host.bwrap, "--json-status-fd", str(status_fd), "--unshare-all", "--unshare-user", "--die-with-parent",
                "--new-session", "--disable-userns", "--ro-bind", "/usr", "/usr"]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            target = os.path.join("/", name)
            if os.path.islink(target):
                args += ["--symlink", os.readlink(target), target]
            elif os.path.isdir(target):
                args += ["--ro-bind", target, target]
        for path in ETC_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        args += ["--size", str(lim.disk_mb << 20), "--tmpfs", INNER_WORKDIR]
        dirs = sorted({os.path.dirname(os.path.normpath(name)) for _, name in file_fds} - {""})
        for d in dirs:
            args += ["--dir", os.path.join(INNER_WORKDIR, d)]
        for fd, name in file_fds:
            args += ["--perms", "0644", "--file", str(fd), os.path.join(INNER_WORKDIR, os.path.normpath(name))]
        if lim.network:
            args += ["--share-net"] + (["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
                                       if os.path.exists("/etc/resolv.conf") else [])
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(lim.disk_mb << 20), "--tmpfs", "/tmp", "--chdir", INNER_WORKDIR,
                 "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOME", INNER_WORKDIR, "--setenv", "TMPDIR", "/tmp",
                 "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--"]
        return args

    def _rlimits(self) -> list[str]:
        lim = self.limits
        cpu = max(1, int(lim.cpu_s + 0.999))
        args = ["/usr/bin/prlimit", "--core=0", f"--cpu={cpu}:{cpu + 1}", f"--fsize={lim.disk_mb << 20}"]
        if not self.host.cgroup_memory:  # only with allow_unisolated
            args.append(f"--data={lim.memory_mb << 20}")  # per process; not RLIMIT_AS, which breaks threads
        if "pids" not in self.host.cgroup_controllers and not self.isolated:
            args.append(f"--nproc={lim.max_tasks}")
        return args + ["--"]

    @staticmethod
    def _python_isolated(command: Sequence[str]) -> list[str]:
        """`python3 x.py` -> `python3 -I x.py`: no user site, no PYTHON* variables, no cwd on sys.path."""
        command = list(command)
        if command and os.path.basename(command[0]).startswith("python") and "-I" not in command[1:2]:
            command.insert(1, "-I")
        return command

    # -- one run

    def _make_workdir(self) -> tuple[str, bool]:
        workdir = tempfile.mkdtemp(prefix="rl-reason-run-", dir=self.work_root)
        mounted = False
        if self.host.is_root:  # mount(2) directly: two fewer process spawns per run than mount/umount
            opts = f"size={self.limits.disk_mb}m,mode=0700,uid={SANDBOX_UID},gid={SANDBOX_UID}"
            mounted = _LIBC.mount(b"tmpfs", workdir.encode(), b"tmpfs", 0, opts.encode()) == 0
        return workdir, mounted

    @staticmethod
    def _remove_workdir(workdir: str, mounted: bool) -> None:
        if mounted:
            _LIBC.umount2(workdir.encode(), MNT_DETACH)
        shutil.rmtree(workdir, ignore_errors=True)

    def run(self, files: Mapping[str, str | bytes] | None = None, command: Sequence[str] = ("python3", "main.py"),
            stdin: str | bytes | None = None) -> ExecResult:
        files = {name: content.encode() if isinstance(content, str) else content for name, content in (files or {}).items()}
        check_files(files)
        with self.budget.slot() as waited:
            result = self._run_in_slot(files, command, stdin)
        result.slot_wait_s = waited
        return result

    def _run_in_slot(self, files: Mapping[str, bytes], command: Sequence[str], stdin) -> ExecResult:
        workdir, mounted, file_fds, cgroup = None, False, [], None
        owner = SANDBOX_UID if self.as_nobody else None
        try:
            if self.isolated:
                for name, content in files.items():
                    fd = os.memfd_create("rl-reason-file")
                    file_fds.append((fd, name))
                    os.write(fd, content)  # memfds take the whole write at once
                    os.lseek(fd, 0, os.SEEK_SET)
            else:
                workdir, mounted = self._make_workdir()
                self._write_files(workdir, files, owner)
            cgroup = RunCgroup(self.host.cgroup_version, self.cgroup_parents, self.limits.memory_mb, self.limits.max_tasks, owner)
            return self._execute(workdir, file_fds, cgroup, command, stdin)
        except OSError as exc:
            return ExecResult("sandbox_error", detail=f"{type(exc).__name__}: {exc}")
        finally:
            for fd, _ in file_fds:
                os.close(fd)
            if cgroup is not None:
                cgroup.remove()
            if workdir is not None:
                self._remove_workdir(workdir, mounted)

    @staticmethod
    def _write_files(workdir: str, files: Mapping[str, bytes], owner: int | None) -> None:
        for name, content in files.items():
            path = os.path.join(workdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(content)
        if owner is not None:
            for root, dirs, names in os.walk(workdir):
                for n in dirs + names:
                    os.chown(os.path.join(root, n), owner, owner)
            os.chown(workdir, owner, owner)

    def _execute(self, workdir: str | None, file_fds: list[tuple[int, str]], cgroup: RunCgroup, command: Sequence[str],
                 stdin) -> ExecResult:
        lim = self.limits
        inner = self._python_isolated(command)
        status_r, status_w = os.pipe()
        seccomp_fd = None
        if self.seccomp_filter is not None:  # bwrap reads the whole filter before it starts the program
            seccomp_fd = os.memfd_create("rl-reason-seccomp")
            os.write(seccomp_fd, self.seccomp_filter)
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
        pass_fds = [status_w, *(fd for fd, _ in file_fds)] + ([seccomp_fd] if seccomp_fd is not None else [])
        if self.isolated:
            argv = self._bwrap_args(file_fds, status_w, seccomp_fd) + inner
            env: dict[str, str] = {}  # bwrap's reaper keeps its own env, readable via /proc/1/environ
            cwd = "/"
        else:
            argv = inner
            env = {"PATH": SANDBOX_PATH, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
            cwd = workdir
        procs = cgroup.procs_files()
        full = ["/bin/sh", "-c", LAUNCHER, "sh", str(len(procs)), *procs, *self._rlimits(), *argv]
        user_kwargs = {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []} if self.as_nobody else {}
        stdin_bytes = stdin.encode() if isinstance(stdin, str) else stdin
        start = time.monotonic()
        try:
            proc = subprocess.Popen(full, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    pass_fds=pass_fds, **user_kwargs)
        finally:
            os.close(status_w)
            if seccomp_fd is not None:
                os.close(seccomp_fd)

        starved = []

        def kill_all():
            if not starved:  # read before the kill: the runqueue wait of the run's live tasks
                starved.append(_runqueue_wait_s(cgroup.pids()))
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            cgroup.kill_all()

        cpu_budget = lim.cpu_s
        check_cpu = (lambda: cgroup.cpu_s() > cpu_budget) if cgroup.cpu_s() is not None else None
        with proc:
            out, err, stopped = pump(proc, stdin_bytes, lim.output_bytes, lim.wall_s, check_cpu=check_cpu, kill_all=kill_all)
            kill_all()
            code = proc.wait()
        wall = time.monotonic() - start
        cpu = cgroup.cpu_s() or 0.0
        with os.fdopen(status_r, "rb") as fh:
            bwrap_status = fh.read().decode(errors="replace")
        if self.isolated and '"child-pid"' not in bwrap_status:
            # bwrap never started the submission: a fault of the sandbox, not of the program
            return ExecResult("sandbox_error", exit_code=code, stderr=err.text(), detail="the sandbox failed to start the program")
        # bwrap reports the child's death by signal as exit 128+N
        sig = -code if code < 0 else (code - 128 if self.isolated and 128 < code < 160 else None)
        oom = cgroup.oom_killed()
        cpu_over = sig == signal.SIGXCPU or ((stopped == "timeout" or sig == signal.SIGKILL) and cpu >= lim.cpu_s)
        timed_out = stopped == "timeout" or cpu_over
        status = classify(code if sig is None else None, sig, timed_out=timed_out, oom=oom, output_over=stopped == "output")
        detail = ""
        if status == "timeout":
            detail = time_limit_detail(cpu_over, cpu, wall, starved[0] if starved else 0.0, lim)
        return ExecResult(status, exit_code=None if sig is not None else code, signal=sig, stdout=out.text(), stderr=err.text(),
                          stdout_truncated=out.truncated, stderr_truncated=err.truncated, wall_s=wall, cpu_s=cpu,
                          peak_memory_mb=cgroup.peak_memory_mb(), detail=detail)


def time_limit_detail(cpu_over: bool, cpu: float, wall: float, runqueue_s: float, lim: Limits) -> str:
    """Which limit ended the run. CPU time decides for a program that runs; the wall limit is the
    safety net for one that blocks or sleeps. A wall stop of a run that spent most of its time
    waiting for a core says so: the host was overloaded, the program was not necessarily slow."""
    if cpu_over:
        return f"CPU limit: used {cpu:.2f} s of {lim.cpu_s:g} s CPU"
    text = f"wall limit: {wall:.2f} s elapsed ({lim.wall_s:g} s allowed) with {cpu:.2f} s CPU used"
    if runqueue_s > max(0.5, 0.25 * lim.wall_s):
        text += f"; waited {runqueue_s:.2f} s for a core (host overloaded)"
    return text

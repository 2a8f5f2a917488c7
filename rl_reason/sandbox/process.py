"""Process backend: each run in bubblewrap namespaces (no network, own PID namespace, a private
filesystem view), inside its own cgroup v1 groups for memory/pids/cpu, as uid nobody when root."""

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
from typing import Mapping, Sequence

from rl_reason.sandbox.base import ExecResult, Limits, Sandbox, check_files, classify
from rl_reason.sandbox.host import SANDBOX_UID, HostIsolation, detect
from rl_reason.sandbox.runner import pump

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


class RunCgroup:
    """One run's cgroup v1 groups; kills and reads accounting for every process of the run."""

    def __init__(self, parents: Mapping[str, str], limits: Limits, owner: int | None):
        self.paths: dict[str, str] = {}
        name = f"run-{uuid.uuid4().hex[:12]}"
        for ctrl, parent in parents.items():
            path = os.path.join(parent, name)
            os.mkdir(path)
            self.paths[ctrl] = path
            if owner is not None:
                os.chown(os.path.join(path, "cgroup.procs"), owner, owner)
        mem = self.paths.get("memory")
        if mem:
            limit = str(limits.memory_mb << 20)
            self._write(mem, "memory.limit_in_bytes", limit)
            if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                self._write(mem, "memory.memsw.limit_in_bytes", limit)  # no escaping into swap
        if "pids" in self.paths:
            self._write(self.paths["pids"], "pids.max", str(limits.max_tasks))
        if "cpu" in self.paths:  # at most one core per run, so one run cannot starve the others
            self._write(self.paths["cpu"], "cpu.cfs_period_us", "100000")
            self._write(self.paths["cpu"], "cpu.cfs_quota_us", "100000")

    @staticmethod
    def _write(path, name, value):
        with open(os.path.join(path, name), "w") as fh:
            fh.write(value)

    @staticmethod
    def _read(path, name) -> str:
        with open(os.path.join(path, name)) as fh:
            return fh.read()

    def procs_files(self) -> list[str]:
        return [os.path.join(p, "cgroup.procs") for p in self.paths.values()]

    def cpu_s(self) -> float | None:
        if "cpuacct" not in self.paths:
            return None
        return int(self._read(self.paths["cpuacct"], "cpuacct.usage")) / 1e9

    def oom_killed(self) -> bool:
        if "memory" not in self.paths:
            return False
        for line in self._read(self.paths["memory"], "memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1]) > 0
        return False

    def peak_memory_mb(self) -> float:
        if "memory" not in self.paths:
            return 0.0
        return int(self._read(self.paths["memory"], "memory.max_usage_in_bytes")) / (1 << 20)

    def kill_all(self) -> bool:
        """SIGKILL every task until the group is empty (a fork bomb is capped by pids.max)."""
        path = self.paths.get("pids") or self.paths.get("memory") or next(iter(self.paths.values()), None)
        if path is None:
            return True
        for _ in range(200):
            pids = [int(p) for p in self._read(path, "cgroup.procs").split()]
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        return False

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths.values():
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


class ProcessSandbox(Sandbox):
    """Local runs isolated with bubblewrap + cgroups. Without a network namespace it refuses to
    run unless `allow_unisolated=True` (then it still cleans the env and applies rlimits)."""

    name = "process"

    def __init__(self, limits: Limits | None = None, *, allow_unisolated: bool = False, work_root: str | None = None,
                 host: HostIsolation | None = None):
        super().__init__(limits)
        self.host = host or detect()
        self.isolated = bool(self.host.bwrap and self.host.network_namespace and self.host.pid_namespace)
        if not self.isolated and not allow_unisolated:
            raise SandboxUnavailable(
                "this host cannot isolate submissions (no working bubblewrap network/PID namespaces; "
                "see `rl-reason sandbox doctor`). Pass allow_unisolated=True (CLI: --allow-unisolated) "
                "to run untrusted code without isolation anyway.")
        self.work_root = work_root or tempfile.gettempdir()
        self.as_nobody = self.host.is_root
        # This sandbox's own cgroup parents: its runs are found (and counted) apart from other users'.
        self.cgroup_parents: dict[str, str] = {}
        tag = f"sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for ctrl, parent in self.host.cgroup_controllers.items():
            path = os.path.join(parent, tag)
            os.mkdir(path)
            self.cgroup_parents[ctrl] = path
        self._finalizer = weakref.finalize(self, _remove_dirs, list(self.cgroup_parents.values()))

    def close(self) -> None:
        self._finalizer()

    def default_concurrency(self) -> int:
        return max(1, os.cpu_count() or 1) * 2  # runs wait on I/O and start-up, not only CPU

    # -- building the command

    def _bwrap_args(self, file_fds: list[tuple[int, str]], status_fd: int) -> list[str]:
        """The work dir is a size-capped tmpfs inside the sandbox; files are copied in by bwrap from
        memfds, so a run touches no host disk and nothing needs cleaning up afterwards."""
        lim = self.limits
        args = [self.host.bwrap, "--json-status-fd", str(status_fd), "--unshare-all", "--unshare-user", "--die-with-parent",
                "--new-session", "--disable-userns", "--ro-bind", "/usr", "/usr"]
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
        if not self.host.cgroup_memory:
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
            cgroup = RunCgroup(self.cgroup_parents, self.limits, owner)
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
        if self.isolated:
            argv = self._bwrap_args(file_fds, status_w) + inner
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
                                    pass_fds=(status_w, *(fd for fd, _ in file_fds)), **user_kwargs)
        finally:
            os.close(status_w)

        def kill_all():
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
        timed_out = stopped == "timeout" or sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= lim.cpu_s)
        status = classify(code if sig is None else None, sig, timed_out=timed_out, oom=oom, output_over=stopped == "output")
        return ExecResult(status, exit_code=None if sig is not None else code, signal=sig, stdout=out.text(), stderr=err.text(),
                          stdout_truncated=out.truncated, stderr_truncated=err.truncated, wall_s=wall, cpu_s=cpu,
                          peak_memory_mb=cgroup.peak_memory_mb())

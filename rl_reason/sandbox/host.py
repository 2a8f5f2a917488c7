"""What isolation this host offers: bubblewrap namespaces, seccomp, cgroup v1/v2 controllers, root.

Detected once per process by trying things (not by reading version strings), so a report never
claims isolation the host does not actually give.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from rl_reason.sandbox.cgroups import V1_CONTROLLERS, V2_CONTROLLERS, setup_cgroups
from rl_reason.sandbox.seccomp import DENIED_SYSCALLS, bpf_program

SANDBOX_UID = 65534  # nobody: a submission never runs as the caller's uid when we can switch


@dataclass
class HostIsolation:
    bwrap: str | None = None
    network_namespace: bool = False
    pid_namespace: bool = False
    cgroup_controllers: dict[str, str] = field(default_factory=dict)  # controller -> writable parent dir
    cgroup_version: int = 0  # 1 or 2: the hierarchy the controllers above live in; 0: none mounted
    seccomp: bool = False  # bwrap installs our seccomp filter (and it denies ptrace)
    is_root: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cgroup_memory(self) -> bool:
        return "memory" in self.cgroup_controllers

    def lines(self) -> list[str]:
        def mark(ok):
            return "yes" if ok else "NO "

        out = [
            f"[{mark(self.bwrap)}] bubblewrap: {self.bwrap or 'not found (apt-get install bubblewrap)'}",
            f"[{mark(self.network_namespace)}] network namespace (no network for submissions)",
            f"[{mark(self.pid_namespace)}] PID namespace (every process of a run dies with it)",
        ]
        out.append(f"[{mark(self.seccomp)}] seccomp filter denying {len(DENIED_SYSCALLS)} syscalls "
                   "(ptrace, process_vm_readv/writev, bpf, perf_event_open, mount, unshare, kexec, module loading, ...)")
        version = {1: "v1", 2: "v2 (unified)"}.get(self.cgroup_version, "none mounted")
        out.append(f"[{mark(self.cgroup_version)}] cgroup hierarchy: {version}")
        for ctrl in (V2_CONTROLLERS if self.cgroup_version == 2 else V1_CONTROLLERS):
            where = self.cgroup_controllers.get(ctrl)
            out.append(f"[{mark(where)}] cgroup {ctrl}: {where or 'not writable'}")
        out.append(f"[{mark(self.is_root)}] root (size-capped tmpfs work dirs, runs as uid {SANDBOX_UID})")
        out.extend(f"note: {n}" for n in self.notes)
        return out


@functools.lru_cache(maxsize=1)
def detect() -> HostIsolation:
    info = HostIsolation(is_root=os.geteuid() == 0)
    info.bwrap = shutil.which("bwrap")
    if info.bwrap:
        probe = [info.bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                 "--dev", "/dev", "/bin/sh", "-c", "test $(grep -c : /proc/net/dev) -le 1 && test $$ -le 3"]
        kwargs = {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []} if info.is_root else {}
        try:
            res = subprocess.run(probe, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, **kwargs)
            info.network_namespace = info.pid_namespace = res.returncode == 0
            if res.returncode != 0:
                info.notes.append(f"bwrap cannot create namespaces here: {res.stderr.decode(errors='replace').strip()[:200]}")
        except (OSError, subprocess.SubprocessError) as exc:
            info.notes.append(f"bwrap failed to start: {exc}")
        if info.network_namespace:
            info.seccomp = _seccomp_works(info.bwrap, kwargs)
            if not info.seccomp:
                info.notes.append("bwrap could not install the seccomp filter: ptrace is not denied")
    cgroups = setup_cgroups(default_slots(), is_root=info.is_root)
    info.cgroup_version, info.cgroup_controllers = cgroups.version, cgroups.controllers
    info.notes.extend(cgroups.notes)
    if "memory" not in info.cgroup_controllers:
        info.notes.append("no writable memory cgroup: the process backend refuses to run unless allow_unisolated=True")
    return info


def default_slots() -> int:
    """Runs executing at once on this host: one per core (each run is capped at one core)."""
    return max(1, os.cpu_count() or 1)


def _seccomp_works(bwrap: str, kwargs: dict) -> bool:
    """Install the filter and check that ptrace is refused under it while ordinary work runs."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, bpf_program())  # a few hundred bytes: fits the pipe buffer
        os.close(write_fd)
        write_fd = -1
        probe = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                 "--seccomp", str(read_fd), "python3", "-I", "-c",
                 "import ctypes; l = ctypes.CDLL(None, use_errno=True); "
                 "assert l.ptrace(16, 1, 0, 0) == -1 and ctypes.get_errno() == 1; print('denied')"]
        res = subprocess.run(probe, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, pass_fds=(read_fd,),
                             **kwargs)
        return res.returncode == 0 and res.stdout.strip() == b"denied"
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)

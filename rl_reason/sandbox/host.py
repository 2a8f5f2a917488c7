"""What isolation this host offers: bubblewrap namespaces, cgroup v1 controllers, running as root.

Detected once per process by trying things (not by reading version strings), so a report never
claims isolation the host does not actually give.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

CGROUP_V1_ROOT = "/sys/fs/cgroup"
CGROUP_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
SANDBOX_UID = 65534  # nobody: a submission never runs as the caller's uid when we can switch


@dataclass
class HostIsolation:
    bwrap: str | None = None
    network_namespace: bool = False
    pid_namespace: bool = False
    cgroup_controllers: dict[str, str] = field(default_factory=dict)  # controller -> writable parent dir
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
        for ctrl in CGROUP_CONTROLLERS:
            where = self.cgroup_controllers.get(ctrl)
            out.append(f"[{mark(where)}] cgroup v1 {ctrl}: {where or 'not writable'}")
        out.append(f"[{mark(self.is_root)}] root (size-capped tmpfs work dirs, runs as uid {SANDBOX_UID})")
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _writable_cgroup(controller: str) -> str | None:
    base = os.path.join(CGROUP_V1_ROOT, controller)
    if not os.path.isfile(os.path.join(base, "cgroup.procs")):
        return None
    parent = os.path.join(base, "rl_reason")
    try:
        os.makedirs(parent, exist_ok=True)
        probe = os.path.join(parent, f"probe-{os.getpid()}")
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError:
        return None
    return parent


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
    for ctrl in CGROUP_CONTROLLERS:
        where = _writable_cgroup(ctrl)
        if where:
            info.cgroup_controllers[ctrl] = where
    if "memory" not in info.cgroup_controllers:
        info.notes.append("no writable cgroup v1 memory controller: memory is limited per process (RLIMIT_DATA) only")
    return info

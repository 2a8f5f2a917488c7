"""cgroup v1 and v2 for the process backend: find a writable parent, one group per run.

Every process of a run starts inside the run's group, so memory, tasks and CPU are capped and
counted for the run as a whole (a memory bomb split over processes included), and the group
kills every process of the run at the end. Paths take a `root` so the v2 code is testable against
a fake cgroupfs tree on hosts that mount v1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
V2_CONTROLLERS = ("memory", "pids", "cpu")
PARENT_NAME = "rl_reason"
V2_HOST_LEAF = "rl-reason-host"  # v2 forbids processes in a group that delegates controllers
CPU_PERIOD_US = 100000
V1_SHARES_PER_SLOT = 1024  # the weight of one normal-priority process
V2_WEIGHT_PER_SLOT = 100
DELEGATE_HINT = "systemd-run --user --scope -p Delegate=yes -- <your command>"


@dataclass
class CgroupSetup:
    """What this host lets us create: version 1 or 2 (0 = none usable) and controller -> parent dir."""

    version: int = 0
    controllers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _write(path: str, name: str, value: str) -> None:
    with open(os.path.join(path, name), "w") as fh:
        fh.write(value)


def _read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as fh:
        return fh.read()


def _probe_mkdir(parent: str) -> bool:
    probe = os.path.join(parent, f"probe-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


def cgroup_version(root: str = CGROUP_ROOT) -> int:
    """2 when the unified hierarchy is mounted at `root` (hybrid hosts with only a named
    `unified` mount beside v1 controllers count as 1), 1 when v1 controllers are, else 0."""
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):
        return 2
    if any(os.path.isfile(os.path.join(root, c, "cgroup.procs")) for c in V1_CONTROLLERS):
        return 1
    return 0


def own_v2_path(proc_cgroup_text: str) -> str | None:
    """This process's group in the unified hierarchy, from /proc/self/cgroup (`0::/path`)."""
    for line in proc_cgroup_text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def setup_v1(root: str, slots: int) -> CgroupSetup:
    out = CgroupSetup(version=1)
    for ctrl in V1_CONTROLLERS:
        base = os.path.join(root, ctrl)
        if not os.path.isfile(os.path.join(base, "cgroup.procs")):
            continue
        parent = os.path.join(base, PARENT_NAME)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            continue
        if _probe_mkdir(parent):
            out.controllers[ctrl] = parent
    if "cpu" in out.controllers:
        _weigh(out, slots)
    return out


def setup_v2(root: str, proc_cgroup_text: str, slots: int) -> CgroupSetup:
    """Use this process's own group as the delegated subtree (root owns it; a non-root user owns
    it inside a systemd scope started with Delegate=yes): move the group's processes into a leaf,
    enable the controllers below it and create the sandbox parent there."""
    out = CgroupSetup(version=2)
    rel = own_v2_path(proc_cgroup_text)
    if rel is None:
        out.notes.append("cgroup v2: this process is not in the unified hierarchy")
        return out
    base = os.path.normpath(os.path.join(root, rel.lstrip("/")))
    parent = os.path.join(base, PARENT_NAME)
    try:
        if not os.path.isdir(parent):
            available = _read(base, "cgroup.controllers").split()
            wanted = [c for c in V2_CONTROLLERS if c in available]
            if base != os.path.normpath(root):  # the root group may hold processes; others may not
                leaf = os.path.join(base, V2_HOST_LEAF)
                os.makedirs(leaf, exist_ok=True)
                for pid in _read(base, "cgroup.procs").split():
                    try:
                        _write(leaf, "cgroup.procs", pid)
                    except ProcessLookupError:
                        pass
            if wanted:
                _write(base, "cgroup.subtree_control", " ".join("+" + c for c in wanted))
            os.mkdir(parent)
        # what the base delegates to its children (the kernel lists "cpu memory pids")
        delegated = {c.lstrip("+") for c in _read(base, "cgroup.subtree_control").split()}
        enabled = [c for c in V2_CONTROLLERS if c in delegated]
        if enabled:
            _write(parent, "cgroup.subtree_control", " ".join("+" + c for c in enabled))
    except OSError as exc:
        out.notes.append(f"cgroup v2: cannot delegate {base} ({type(exc).__name__}: {exc}); as a non-root user "
                         f"start the program in a delegated scope: {DELEGATE_HINT}")
        return out
    if not _probe_mkdir(parent):
        out.notes.append(f"cgroup v2: {parent} is not writable; run as root or under {DELEGATE_HINT}")
        return out
    out.controllers = {c: parent for c in enabled}
    if "memory" not in enabled:
        out.notes.append(f"cgroup v2: the memory controller is not delegated to {base}")
    if "cpu" in out.controllers:
        _weigh(out, slots)
    return out


def _weigh(setup: CgroupSetup, slots: int) -> None:
    """Runs share the sandbox parent's CPU weight, which by default equals ONE process's: next to
    two busy host processes every concurrent run would starve into a false timeout. Weigh the
    parent like `slots` normal-priority processes instead."""
    parent = setup.controllers["cpu"]
    try:
        if setup.version == 1:
            _write(parent, "cpu.shares", str(V1_SHARES_PER_SLOT * slots))
        else:
            _write(parent, "cpu.weight", str(min(10000, V2_WEIGHT_PER_SLOT * slots)))
    except OSError as exc:
        setup.notes.append(f"cannot set the sandbox's CPU weight: {exc}")


def systemd_user_scope(pid: int, run=subprocess.run) -> str | None:
    """Ask the user's systemd manager to move `pid` into a new transient scope with Delegate=yes
    (what `systemd-run --user --scope -p Delegate=yes` does for its child); None on success,
    else why not."""
    if not shutil.which("busctl"):
        return "busctl not found"
    cmd = ["busctl", "--user", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
           "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", f"rl-reason-{pid}.scope",
           "fail", "2", "PIDs", "au", "1", str(pid), "Delegate", "b", "true", "0"]
    try:
        res = run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if res.returncode == 0 else (res.stderr or res.stdout).strip()[:200]


def setup_cgroups(slots: int, root: str = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup",
                  is_root: bool | None = None, start_scope=systemd_user_scope) -> CgroupSetup:
    version = cgroup_version(root)
    if version == 2:
        with open(proc_cgroup) as fh:
            before = fh.read()
        out = setup_v2(root, before, slots)
        if out.controllers or (os.geteuid() == 0 if is_root is None else is_root):
            return out
        # not root and our group is not ours: move into a systemd scope delegated to us, then retry
        why = start_scope(os.getpid())
        if why is not None:
            out.notes.append(f"cgroup v2: could not start a delegated systemd scope: {why}")
            return out
        for _ in range(50):  # the move is a systemd job; wait until it shows in /proc/self/cgroup
            with open(proc_cgroup) as fh:
                now = fh.read()
            if now != before:
                return setup_v2(root, now, slots)
            time.sleep(0.02)
        out.notes.append("cgroup v2: systemd accepted the scope but this process was not moved into it")
        return out
    if version == 1:
        return setup_v1(root, slots)
    return CgroupSetup(notes=[f"no cgroup hierarchy mounted at {root}"])


def make_sandbox_parents(setup: CgroupSetup, tag: str) -> dict[str, str]:
    """One group per sandbox object under the shared parent (per controller on v1)."""
    made: dict[str, str] = {}
    for ctrl, parent in setup.controllers.items():
        path = os.path.join(parent, tag)
        if path not in made.values():
            os.mkdir(path)
            if setup.version == 2:
                enabled = [c for c in V2_CONTROLLERS if c in setup.controllers]
                _write(path, "cgroup.subtree_control", " ".join("+" + c for c in enabled))
        made[ctrl] = path
    return made


class RunCgroup:
    """One run's group(s): limits, accounting, and killing every process of the run."""

    def __init__(self, version: int, parents: dict[str, str], memory_mb: int, max_tasks: int, owner: int | None):
        self.version = version
        name = f"run-{uuid.uuid4().hex[:12]}"
        self.paths = {ctrl: os.path.join(parent, name) for ctrl, parent in parents.items()}
        for path in sorted(set(self.paths.values())):
            os.mkdir(path)
            if owner is not None:
                os.chown(os.path.join(path, "cgroup.procs"), owner, owner)
        mem, pids, cpu = (self.paths.get(c) for c in ("memory", "pids", "cpu"))
        limit = str(memory_mb << 20)
        quota = f"{CPU_PERIOD_US} {CPU_PERIOD_US}"  # at most one core per run, so one run cannot starve the others
        if version == 1:
            if mem:
                _write(mem, "memory.limit_in_bytes", limit)
                if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                    _write(mem, "memory.memsw.limit_in_bytes", limit)  # no escaping into swap
            if pids:
                _write(pids, "pids.max", str(max_tasks))
            if cpu:
                _write(cpu, "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(cpu, "cpu.cfs_quota_us", str(CPU_PERIOD_US))
        else:
            if mem:
                _write(mem, "memory.max", limit)
                _write(mem, "memory.swap.max", "0")
                _write(mem, "memory.oom.group", "1")  # an OOM kills the whole run, not one process of it
            if pids:
                _write(pids, "pids.max", str(max_tasks))
            if cpu:
                _write(cpu, "cpu.max", quota)

    def _any(self) -> str | None:
        return self.paths.get("pids") or self.paths.get("memory") or next(iter(self.paths.values()), None)

    def procs_files(self) -> list[str]:
        return [os.path.join(p, "cgroup.procs") for p in sorted(set(self.paths.values()))]

    def pids(self) -> list[int]:
        path = self._any()
        return [int(p) for p in _read(path, "cgroup.procs").split()] if path else []

    def cpu_s(self) -> float | None:
        if self.version == 1:
            path = self.paths.get("cpuacct")
            return int(_read(path, "cpuacct.usage")) / 1e9 if path else None
        path = self._any()  # cpu.stat's usage_usec exists in every v2 group, controller or not
        if path is None:
            return None
        for line in _read(path, "cpu.stat").splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
        return None

    def oom_killed(self) -> bool:
        path = self.paths.get("memory")
        if path is None:
            return False
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in _read(path, name).splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1]) > 0
        return False

    def peak_memory_mb(self) -> float:
        path = self.paths.get("memory")
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"  # memory.peak: Linux 5.19+
        if path is None or not os.path.exists(os.path.join(path, name)):
            return 0.0
        return int(_read(path, name)) / (1 << 20)

    def kill_all(self) -> bool:
        """SIGKILL every task until the group is empty (a fork bomb is capped by pids.max)."""
        path = self._any()
        if path is None:
            return True
        if self.version == 2 and os.path.exists(os.path.join(path, "cgroup.kill")):
            _write(path, "cgroup.kill", "1")  # Linux 5.14+: the kernel kills the whole group at once
        for _ in range(200):
            pids = self.pids()
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
        for path in sorted(set(self.paths.values())):
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)

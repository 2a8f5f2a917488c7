"""cgroup v1/v2 code paths against fake cgroupfs trees (CI hosts mount v1), the refusal without a
memory cap, the doctor's report of both, and the seccomp program and profile."""

from __future__ import annotations

import json
import os
import shutil
import struct

import pytest

from rl_reason.sandbox import Limits, get_sandbox
from rl_reason.sandbox.cgroups import (
    PARENT_NAME,
    V2_HOST_LEAF,
    RunCgroup,
    cgroup_version,
    make_sandbox_parents,
    setup_cgroups,
    setup_v2,
    systemd_user_scope,
)
from rl_reason.sandbox.host import HostIsolation, detect
from rl_reason.sandbox.process import SandboxUnavailable
from rl_reason.sandbox.seccomp import (
    AUDIT_ARCH_AARCH64,
    AUDIT_ARCH_X86_64,
    DENIED_SYSCALLS,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    bpf_program,
    docker_profile_text,
    shipped_profile,
)


def fake_v2(tmp_path, own="/system.slice/trainer.service", controllers="cpuset cpu io memory hugetlb pids"):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.procs").write_text("1\n")
    (root / "cgroup.subtree_control").write_text("")
    base = root / own.lstrip("/")
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.procs").write_text("4242\n")
    (base / "cgroup.subtree_control").write_text("")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::{own}\n")
    return root, base, proc


def test_version_detection(tmp_path):
    root, _, _ = fake_v2(tmp_path)
    assert cgroup_version(str(root)) == 2
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "cgroup.procs").write_text("")
    (v1 / "unified").mkdir()  # hybrid: a bare unified mount beside v1 controllers is still v1
    assert cgroup_version(str(v1)) == 1
    assert cgroup_version(str(tmp_path / "none")) == 0


def test_v2_delegates_own_group_and_weighs_the_parent(tmp_path):
    root, base, proc = fake_v2(tmp_path)
    setup = setup_cgroups(slots=2, root=str(root), proc_cgroup=str(proc))
    parent = base / PARENT_NAME
    assert (setup.version, setup.notes) == (2, [])
    assert setup.controllers == {c: str(parent) for c in ("memory", "pids", "cpu")}
    # the caller's processes moved to a leaf first (no processes in a group that delegates)
    assert (base / V2_HOST_LEAF / "cgroup.procs").read_text() == "4242"
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cpu.weight").read_text() == "200"  # like two normal-priority processes


def test_v2_run_group_limits_accounting_and_kill(tmp_path):
    root, base, proc = fake_v2(tmp_path)
    setup = setup_cgroups(slots=2, root=str(root), proc_cgroup=str(proc))
    parents = make_sandbox_parents(setup, "sandbox-test")
    assert len(set(parents.values())) == 1
    run = RunCgroup(2, parents, memory_mb=256, max_tasks=64, owner=None)
    (path,) = set(run.paths.values())
    read = lambda name: open(os.path.join(path, name)).read()  # noqa: E731
    assert (read("memory.max"), read("memory.swap.max"), read("pids.max"), read("cpu.max")) == (
        str(256 << 20), "0", "64", "100000 100000")
    assert read("memory.oom.group") == "1"
    assert run.procs_files() == [os.path.join(path, "cgroup.procs")]
    with open(os.path.join(path, "cpu.stat"), "w") as fh:
        fh.write("usage_usec 1500000\nuser_usec 1400000\nsystem_usec 100000\n")
    with open(os.path.join(path, "memory.events"), "w") as fh:
        fh.write("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert run.cpu_s() == 1.5 and run.oom_killed() is False
    with open(os.path.join(path, "memory.events"), "w") as fh:
        fh.write("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n")
    with open(os.path.join(path, "memory.peak"), "w") as fh:
        fh.write(str(100 << 20))
    assert run.oom_killed() is True and run.peak_memory_mb() == 100.0
    with open(os.path.join(path, "cgroup.procs"), "w") as fh:
        fh.write("")
    with open(os.path.join(path, "cgroup.kill"), "w") as fh:
        fh.write("0")
    assert run.kill_all() is True and read("cgroup.kill") == "1"


def test_v2_without_a_delegated_group_explains_how_to_get_one(tmp_path):
    root, _, _ = fake_v2(tmp_path)
    proc = tmp_path / "elsewhere"
    proc.write_text("0::/user.slice/user-1000.slice/session-3.scope\n")  # a group we cannot write
    setup = setup_v2(str(root), proc.read_text(), slots=2)
    assert setup.controllers == {}
    assert any("systemd-run --user --scope -p Delegate=yes" in note for note in setup.notes)


def test_v2_non_root_moves_into_a_delegated_systemd_scope(tmp_path):
    root, _, _ = fake_v2(tmp_path)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("0::/user.slice/user-1000.slice/session-3.scope\n")  # not ours to write
    scope = "/user.slice/user-1000.slice/user@1000.service/app.slice/rl-reason-1.scope"
    asked = []

    def start_scope(pid):  # what systemd does: make the scope, move the process into it
        asked.append(pid)
        fake = root / scope.lstrip("/")
        fake.mkdir(parents=True)
        (fake / "cgroup.controllers").write_text("cpu memory pids\n")
        (fake / "cgroup.procs").write_text(f"{pid}\n")
        proc.write_text(f"0::{scope}\n")

    setup = setup_cgroups(slots=2, root=str(root), proc_cgroup=str(proc), is_root=False, start_scope=start_scope)
    assert asked == [os.getpid()]
    assert setup.controllers["memory"] == str(root / scope.lstrip("/") / PARENT_NAME)

    calls = []

    class Done:
        returncode, stdout, stderr = 1, "", "Failed to connect to bus: No medium found"

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return Done()

    if shutil.which("busctl"):
        assert systemd_user_scope(42, run=fake_run) == "Failed to connect to bus: No medium found"
        assert calls[0][:3] == ["busctl", "--user", "call"] and "rl-reason-42.scope" in calls[0]
        assert calls[0][-8:] == ["PIDs", "au", "1", "42", "Delegate", "b", "true", "0"]
    else:
        assert systemd_user_scope(42, run=fake_run) == "busctl not found" and calls == []


def test_v2_without_memory_controller_is_refused_unless_opted_in(tmp_path):
    root, _, proc = fake_v2(tmp_path, controllers="cpu pids")
    setup = setup_cgroups(slots=2, root=str(root), proc_cgroup=str(proc))
    assert "memory" not in setup.controllers and any("memory controller is not delegated" in n for n in setup.notes)
    real = detect()
    host = HostIsolation(bwrap=real.bwrap, network_namespace=real.network_namespace, pid_namespace=real.pid_namespace,
                         cgroup_controllers={}, cgroup_version=2, seccomp=real.seccomp, is_root=real.is_root)
    with pytest.raises(SandboxUnavailable, match="no writable memory cgroup"):
        get_sandbox("process", host=host)
    with get_sandbox("process", limits=Limits(wall_s=5), host=host, allow_unisolated=True) as sb:
        r = sb.run({"main.py": "print('ran')"})
    assert (r.status, r.stdout) == ("ok", "ran\n")


def test_doctor_lines_name_the_hierarchy(tmp_path):
    root, _, proc = fake_v2(tmp_path)
    setup = setup_cgroups(slots=2, root=str(root), proc_cgroup=str(proc))
    v2 = HostIsolation(cgroup_version=2, cgroup_controllers=setup.controllers)
    lines = v2.lines()
    assert "[yes] cgroup hierarchy: v2 (unified)" in lines
    assert any(line.startswith("[yes] cgroup memory:") for line in lines)
    assert not any("cpuacct" in line for line in lines)  # v2 has no separate cpuacct
    assert "[NO ] cgroup hierarchy: none mounted" in HostIsolation().lines()


def test_this_host_runs_the_v1_path_for_real():
    host = detect()
    if host.cgroup_version != 1:
        pytest.skip("this host does not mount cgroup v1")
    assert set(host.cgroup_controllers) == {"memory", "pids", "cpu", "cpuacct"}
    with open(os.path.join(host.cgroup_controllers["cpu"], "cpu.shares")) as fh:
        assert int(fh.read()) == 1024 * max(1, os.cpu_count() or 1)


def _decode(program: bytes):
    return [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


def _simulate(program: bytes, arch: int, nr: int) -> int:
    """Run the classic-BPF program on (arch, nr): the return value the kernel would act on."""
    insns, pc, acc = _decode(program), 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = arch if k == 4 else nr
            pc += 1
        elif code in (0x15, 0x35):
            hit = acc == k if code == 0x15 else acc >= k
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


def test_seccomp_program_denies_the_list_and_allows_the_rest():
    program = bpf_program()
    eperm = SECCOMP_RET_ERRNO | 1
    for name, (x86, arm) in DENIED_SYSCALLS.items():
        assert _simulate(program, AUDIT_ARCH_X86_64, x86) == eperm, name
        if arm is not None:
            assert _simulate(program, AUDIT_ARCH_AARCH64, arm) == eperm, name
    for nr in (0, 1, 2, 9, 56, 57, 59, 231):  # read, write, open, mmap, clone, fork, execve, exit_group
        assert _simulate(program, AUDIT_ARCH_X86_64, nr) == SECCOMP_RET_ALLOW
    assert _simulate(program, AUDIT_ARCH_X86_64, 0x40000000 | 101) == eperm  # x32 ABI
    assert _simulate(program, 0x40000003, 26) == eperm  # i386 ptrace through int 0x80
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "bpf", "userfaultfd", "keyctl",
                 "add_key", "request_key", "kexec_load", "mount", "umount2", "pivot_root", "unshare", "setns",
                 "init_module", "finit_module", "delete_module"):
        assert name in DENIED_SYSCALLS


def test_shipped_docker_profile_matches_the_list():
    assert shipped_profile() == docker_profile_text()
    profile = json.loads(shipped_profile())
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    (rule,) = profile["syscalls"]
    assert (rule["action"], rule["errnoRet"], sorted(rule["names"])) == ("SCMP_ACT_ERRNO", 1, sorted(DENIED_SYSCALLS))

"""Hostile and awkward programs (tests/sandbox/corpus/) through both backends: verdict and host state."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest

from rl_reason.sandbox import Limits
from tests.sandbox.conftest import TEST_LIMITS, open_backend

CORPUS = Path(__file__).parent / "corpus"
LIMITS_HIT = {"timeout", "memory", "killed", "runtime_error"}

# program -> allowed statuses (the verdict); host-state checks run after every program.
EXPECTED = {
    "fork_bomb.py": LIMITS_HIT,
    "memory_bomb.py": {"memory"},
    "memory_split.py": {"memory"},
    "infinite_loop.py": {"timeout"},
    "sigterm_ignoring_sleep.py": {"timeout"},
    "daemon_grandchild.py": {"ok"},
    "cpu_spinning_children.py": {"timeout"},
    "connect_internet.py": {"ok"},
    "read_environment.py": {"ok"},
    "fill_disk.py": {"ok"},
    "fifo_block.py": {"timeout"},
    "flood_stdout.py": {"output_limit"},
    "flood_stderr.py": {"output_limit"},
    "giant_line.py": {"output_limit"},
    "binary_output.py": {"ok"},
    "deep_recursion.py": {"runtime_error", "memory"},
    "segfault.py": {"runtime_error"},
    "kill_parent.py": {"ok", "killed"},
    "kill_everything.py": {"killed", "runtime_error"},  # runtime_error: nothing else visible to kill (ESRCH)
    "wait_stdin_forever.py": {"ok"},
    "exit_nonzero.py": {"runtime_error"},
    "control_large_alloc.py": {"ok"},
    "control_many_threads.py": {"ok"},
    "ptrace_pid1.py": {"ok"},
}


def run_file(sb, name, stdin=None):
    return sb.run({"main.py": (CORPUS / name).read_text()}, command=["python3", "main.py"], stdin=stdin)


def host_processes_matching(cmdline: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if text == cmdline:
            found.append(pid)
    return found


def assert_host_clean(sb):
    if sb.name == "process":
        # A run's cgroup is only removed once it holds no task, and every process of a run starts
        # inside it (nothing in the sandbox can leave it): no run-* group left = nothing survived.
        for ctrl, parent in sb.cgroup_parents.items():
            assert [d for d in os.listdir(parent) if d.startswith("run-")] == [], f"{ctrl} cgroup left behind"
    else:
        (slot,) = list(sb.live.values())
        procs = [row[-1] for row in slot.container.top()["Processes"]]
        # A container that replaced a broken one may not have exec'ed its runner yet (docker-init
        # alone): wait for it; a leftover of the job would show as a third process instead.
        deadline = time.monotonic() + 10
        while len(procs) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            procs = [row[-1] for row in slot.container.top()["Processes"]]
        assert len(procs) == 2, procs  # docker-init and the runner, nothing the job started


def assert_sandbox_still_works(sb):
    r = run_file(sb, "control_echo.py", stdin="2 3\n")
    assert (r.status, r.stdout) == ("ok", "5\n")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_program(sandbox, name):
    start = time.monotonic()
    r = run_file(sandbox, name)
    assert r.status in EXPECTED[name], (r.status, r.stdout[-300:], r.stderr[-300:], r.detail)
    assert r.status != "sandbox_error"
    assert time.monotonic() - start < TEST_LIMITS.wall_s + 6, "the run overstayed its wall limit"
    if r.status in ("output_limit",):
        assert r.stdout_truncated or r.stderr_truncated
        assert len(r.stdout.encode()) <= TEST_LIMITS.output_bytes + 4 and len(r.stderr.encode()) <= TEST_LIMITS.output_bytes + 4
    if name == "connect_internet.py":
        assert "CONNECTED" not in r.stdout and "blocked" in r.stdout
    if name == "read_environment.py":
        assert "RL_REASON_TEST_SECRET" not in r.stdout and "PYTEST_CURRENT_TEST" not in r.stdout
    if name == "fill_disk.py":
        written = int(r.stdout.split()[3])
        assert written <= TEST_LIMITS.disk_mb
    if name == "daemon_grandchild.py":
        assert host_processes_matching("sleep 987") == []
    if name == "binary_output.py":
        assert r.stdout.endswith("end")
    if name == "wait_stdin_forever.py":
        assert r.stdout == "read 0\n"
    if name == "exit_nonzero.py":
        assert r.exit_code == 3 and r.stdout == "partial\n"
    if name == "control_large_alloc.py":
        assert r.stdout == "allocated 150\n"
    if name == "control_many_threads.py":
        assert r.stdout == "40\n"
    if name == "segfault.py":
        assert r.signal == 11
    if name == "ptrace_pid1.py":  # the seccomp filter answers EPERM on both backends
        assert r.stdout == "ptrace Operation not permitted\nprocess_vm_readv Operation not permitted\n"
    if name == "memory_bomb.py":
        assert r.peak_memory_mb <= TEST_LIMITS.memory_mb + 64
    assert_host_clean(sandbox)
    if name in ("kill_parent.py", "kill_everything.py", "fork_bomb.py", "memory_bomb.py"):
        assert_sandbox_still_works(sandbox)
        assert_host_clean(sandbox)


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("RL_REASON_TEST_SECRET", "hunter2-" + secrets.token_hex(8))


def test_no_connection_to_host_listener(sandbox):
    accepted = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        r = run_file(sandbox, "connect_host_listener.py", stdin=f"{port}\n")
    finally:
        stop.set()
        thread.join()
        server.close()
    assert r.status == "ok" and "CONNECTED" not in r.stdout
    assert accepted == []
    assert_host_clean(sandbox)


def test_listening_port_is_not_reachable_from_host(sandbox):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_file(sandbox, "listen_port.py", stdin=f"{port}\n")))
    thread.start()
    time.sleep(1.0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    thread.join()
    assert box["r"].status == "ok" and "ACCEPTED" not in box["r"].stdout
    assert_host_clean(sandbox)


def test_host_files_unreadable_and_unwritable(sandbox, tmp_path):
    secret = "s3cret-" + secrets.token_hex(8)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o644)
    tmp_path.chmod(0o755)
    for name in ("read_host_files.py", "symlink_escape.py"):
        r = run_file(sandbox, name, stdin=f"{secret_file}\n")
        assert r.status in ("ok", "runtime_error") and secret not in r.stdout + r.stderr, name
    target = tmp_path / "escaped.txt"
    tmp_path.chmod(0o777)
    r = run_file(sandbox, "write_outside_workdir.py", stdin=f"{target}\n")
    # writes into the run's own private root are allowed; nothing may reach the host's files
    assert r.status == "ok" and f"wrote {target}" not in r.stdout
    assert not target.exists()
    assert not any(Path(p).exists() for p in ("/usr/rl_reason_escape", "/etc/rl_reason_escape", "/rl_reason_escape"))
    assert_host_clean(sandbox)


def test_unread_stdin_does_not_stall(sandbox):
    r = run_file(sandbox, "ignore_big_stdin.py", stdin="x" * (8 << 20))
    assert (r.status, r.stdout) == ("ok", "done\n")
    assert r.wall_s < TEST_LIMITS.wall_s


def test_nothing_reaches_the_next_run(sandbox):
    planted = run_file(sandbox, "plant_startup_files.py")
    assert planted.status == "ok" and "planted" in planted.stdout
    r = run_file(sandbox, "probe_leftovers.py")
    assert r.status == "ok"
    files_line, shm_line, procs_line = r.stdout.splitlines()
    assert files_line == "[]"
    assert shm_line == "shm -1"  # the SysV segment the first run made is gone
    assert "HIJACKED" not in r.stdout
    assert "sleep" not in procs_line
    assert_host_clean(sandbox)


def test_run_many_keeps_input_order(sandbox):
    jobs = [{"files": {"main.py": f"import time; time.sleep({0.3 if i % 2 == 0 else 0}); print({i})"}, "command": ["python3", "main.py"]}
            for i in range(6)]
    results = sandbox.run_many(jobs, concurrency=3)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]


def test_program_close_to_the_cpu_limit_passes(sandbox):
    # 1.5 s of CPU under a 2 s CPU limit; the wall limit is generous so that a loaded machine
    # (other work starving this run of CPU) cannot turn the control into a timeout.
    with open_backend(sandbox.name, Limits(cpu_s=2, wall_s=30)) as sb:
        r = run_file(sb, "control_near_time_limit.py")
    assert (r.status, r.stdout) == ("ok", "finished\n"), r
    assert 1.4 <= r.cpu_s < 2.0

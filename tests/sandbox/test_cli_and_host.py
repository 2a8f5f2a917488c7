"""CLI (`sandbox run/doctor`, `verify code`), isolation detection and the unisolated opt-in."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from rl_reason.cli.checks import UserError
from rl_reason.cli.verify_code import add_code_parser
from rl_reason.sandbox import Limits, get_sandbox
from rl_reason.sandbox.host import HostIsolation, detect
from rl_reason.sandbox.process import SandboxUnavailable


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "rl_reason", *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_sandbox_run_cli(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("import sys\nprint(sys.stdin.read().upper())\nsys.exit(2)\n")
    res = cli("sandbox", "run", str(prog), "--stdin", "-", "--json", stdin="abc")
    out = json.loads(res.stdout)
    assert res.returncode == 1 and (out["status"], out["exit_code"], out["stdout"]) == ("runtime_error", 2, "ABC\n")
    assert cli("sandbox", "run", str(tmp_path / "missing.py")).returncode == 2


def test_doctor_reports_what_detect_finds():
    res = cli("sandbox", "doctor")
    host = detect()
    assert ("[yes] network namespace" in res.stdout) == host.network_namespace
    assert ("untrusted code runs isolated" in res.stdout) == bool(host.bwrap and host.network_namespace and host.pid_namespace
                                                                  and host.cgroup_memory)
    version = {1: "v1", 2: "v2 (unified)"}.get(host.cgroup_version, "none mounted")
    assert f"cgroup hierarchy: {version}" in res.stdout
    assert ("[yes] seccomp filter" in res.stdout) == host.seccomp


@pytest.mark.docker
def test_doctor_names_the_build_command_when_the_image_is_missing(monkeypatch, capsys):
    docker = pytest.importorskip("docker")
    try:
        docker.from_env(timeout=10).ping()
    except Exception as exc:
        if os.environ.get("RL_REASON_REQUIRE_DOCKER") == "1":
            pytest.fail(f"RL_REASON_REQUIRE_DOCKER=1 but dockerd is unreachable: {exc}")
        pytest.skip(f"dockerd unreachable: {exc}")
    from rl_reason.cli.sandbox import _doctor

    monkeypatch.setattr("rl_reason.sandbox.image.IMAGE", "rl-reason-sandbox-missing-test")
    _doctor(argparse.Namespace())
    out = capsys.readouterr().out
    assert "build the image with `rl-reason sandbox build-image`" in out and "404" not in out


def test_refuses_without_network_isolation_unless_opted_in():
    real = detect()
    bare = HostIsolation(bwrap=None, is_root=real.is_root, cgroup_controllers=dict(real.cgroup_controllers),
                         cgroup_version=real.cgroup_version)
    with pytest.raises(SandboxUnavailable, match="allow_unisolated"):
        get_sandbox("process", host=bare)
    with get_sandbox("process", limits=Limits(wall_s=3), host=bare, allow_unisolated=True) as sb:
        r = sb.run({"main.py": "import os; print(sorted(os.environ))"})
    # only what the sandbox sets (PWD comes from the launcher shell), nothing of the caller's env
    assert (r.status, r.stdout) == ("ok", "['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR']\n")


def test_verify_code_cli(tmp_path, capsys):
    rows = [{"id": "good", "response": "def f(x):\n    return x * 2", "tests": [{"kind": "call", "fn_name": "f", "inputs": [[1], [2]], "outputs": [2, 4]}]},
            {"id": "bad", "response": "print(1)", "tests": [{"kind": "stdio", "input": "", "output": "2"}]}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parser = argparse.ArgumentParser()
    add_code_parser(parser.add_subparsers())
    args = parser.parse_args(["code", "--input", str(src), "--output", str(tmp_path / "out.jsonl"), "--quiet"])
    assert args.func(args) == 0
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted((o["id"], o["score"]) for o in out) == [("bad", 0.0), ("good", 1.0)]
    assert "mean score: 0.5000" in capsys.readouterr().out
    src.write_text('{"id": 1}\n')
    args = parser.parse_args(["code", "--input", str(src), "--quiet"])
    with pytest.raises(UserError, match=r"in.jsonl:1: key 'response'"):
        args.func(args)

"""`rl-reason sandbox run|doctor|build-image`: run a file in the sandbox, report host isolation, build the image."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from rl_reason.cli import checks

# The flags are the fields of ``Limits`` (its defaults, written once); these two stay library-only.
_LIBRARY_ONLY = ("output_bytes", "network")


def _limits_args(parser: argparse.ArgumentParser) -> None:
    from rl_reason.config.flags import add_config_flags
    from rl_reason.sandbox import Limits

    add_config_flags(parser, Limits, skip=_LIBRARY_ONLY, types={
        "cpu_s": checks.positive_float, "wall_s": checks.positive_float, "memory_mb": checks.positive_int,
        "max_tasks": checks.positive_int, "disk_mb": checks.positive_int}, help={
        "cpu_s": "CPU seconds for all processes of the run", "wall_s": "wall-clock seconds before everything is killed",
        "memory_mb": "memory for all processes together, MiB", "max_tasks": "processes + threads at once",
        "disk_mb": "size of the work dir and /tmp, MiB"})
    parser.add_argument("--allow-unisolated", action="store_true",
                        help="process backend only: run even if this host cannot isolate the network (UNSAFE for untrusted code)")


def limits_from_args(args):
    from rl_reason.config.flags import config_from_flags
    from rl_reason.sandbox import Limits

    return config_from_flags(Limits, args, skip=_LIBRARY_ONLY)


def open_sandbox(args):
    from rl_reason.sandbox import get_sandbox

    options = {"allow_unisolated": True} if args.backend == "process" and args.allow_unisolated else {}
    return get_sandbox(args.backend, limits=limits_from_args(args), **options)


def _run(args) -> int:
    from rl_reason.sandbox.process import SandboxUnavailable

    code = checks.input_file(args.file, "FILE").read_bytes()
    stdin = None
    if args.stdin is not None:
        stdin = sys.stdin.buffer.read() if args.stdin == "-" else checks.input_file(args.stdin, "--stdin").read_bytes()
    try:
        with open_sandbox(args) as sb:
            result = sb.run({"main.py": code}, command=["python3", "main.py"], stdin=stdin)
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"[{result.status}] exit={result.exit_code} signal={result.signal} wall={result.wall_s:.3f}s "
              f"cpu={result.cpu_s:.3f}s peak={result.peak_memory_mb:.1f}MiB"
              + (" stdout truncated" if result.stdout_truncated else "") + (" stderr truncated" if result.stderr_truncated else "")
              + (f" ({result.detail})" if result.detail else ""), file=sys.stderr)
    return 0 if result.status == "ok" else 1


def _doctor(args) -> int:
    from rl_reason.sandbox.host import detect

    host = detect()
    print("process backend:")
    for line in host.lines():
        print("  " + line)
    isolated = bool(host.bwrap and host.network_namespace and host.pid_namespace and host.cgroup_memory)
    print("  => " + ("untrusted code runs isolated" if isolated else
                     "NOT isolated: the process backend refuses untrusted code unless --allow-unisolated is given"))
    print("docker backend:")
    docker_ok = False
    try:
        import docker

        from rl_reason.sandbox.image import IMAGE, image_fingerprint
        from rl_reason.sandbox.seccomp import DENIED_SYSCALLS

        client = docker.from_env(timeout=10)
        client.ping()
        try:
            image = client.images.get(IMAGE)
        except docker.errors.ImageNotFound:
            print(f"  [NO ] dockerd reachable, but image {IMAGE} is missing: build the image with "
                  "`rl-reason sandbox build-image` (add --offline without a registry)")
        else:
            fresh = (image.labels or {}).get("rl-reason.fingerprint") == image_fingerprint()
            print(f"  [yes] dockerd reachable; image {IMAGE} " + ("up to date" if fresh else
                  "STALE: rebuild it with `rl-reason sandbox build-image`"))
            print(f"  [yes] seccomp profile (shipped with the package) denying {len(DENIED_SYSCALLS)} syscalls, "
                  "no capabilities, no-new-privileges")
            docker_ok = fresh
    except Exception as exc:
        print(f"  [NO ] {type(exc).__name__}: {exc}")
    return 0 if isolated or docker_ok else 1


def _build_image(args) -> int:
    import docker

    from rl_reason.sandbox.image import IMAGE, build_image, image_fingerprint

    client = docker.from_env(timeout=900)
    if args.skip_existing:
        try:
            if (client.images.get(IMAGE).labels or {}).get("rl-reason.fingerprint") == image_fingerprint():
                print(f"{IMAGE} exists and is up to date; not rebuilding")
                return 0
        except docker.errors.ImageNotFound:
            pass
    image_id = build_image(client, offline=args.offline, log=lambda msg: print(msg, flush=True))
    print(f"built {IMAGE} ({image_id})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run untrusted code in the sandbox; check isolation; build the Docker image",
                                   description="Sandbox for untrusted code (process or Docker backend).")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run a Python file in the sandbox and print its output and verdict",
                         description="Copy FILE into a fresh work dir as main.py, run `python3 main.py` under the "
                         "limits below, print its stdout/stderr and a verdict line; exit 0 if it ran ok, 1 otherwise.")
    run.add_argument("file", help="Python file to run (copied into a fresh work dir as main.py)")
    run.add_argument("--backend", choices=["process", "docker"], default="process", help="sandbox backend (default process)")
    run.add_argument("--stdin", default=None, help="file whose contents are the program's stdin ('-' = this stdin); closed if omitted")
    run.add_argument("--json", action="store_true", help="print the full ExecResult as JSON instead")
    _limits_args(run)
    run.set_defaults(func=_run)

    doctor = sub.add_parser("doctor", help="report which isolation this host provides (exit 1 if none is usable)",
                            description="Check what the process backend can use on this host (bubblewrap, network, "
                            "PID and mount namespaces, cgroups) and whether the Docker backend's daemon and image are "
                            "ready; exit 0 if untrusted code can run isolated by either backend, else 1.")
    doctor.set_defaults(func=_doctor)

    build = sub.add_parser("build-image", help="build the rl-reason-sandbox Docker image",
                           description="Build the Docker image the docker backend runs code in, labelled with a "
                           "fingerprint of its recipe so that `sandbox doctor` can tell a stale image.")
    build.add_argument("--offline", action="store_true", help="build from a debootstrap root filesystem (no registry needed)")
    build.add_argument("--skip-existing", action="store_true", help="do nothing if an up-to-date image already exists")
    build.set_defaults(func=_build_image)

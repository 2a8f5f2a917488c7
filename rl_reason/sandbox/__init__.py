"""Sandboxes for untrusted code: `get_sandbox("process" | "docker", limits=Limits(...))`.

No torch here, and the Docker SDK is imported only by the Docker backend.
"""

from __future__ import annotations

from rl_reason.sandbox.base import STATUSES, ExecResult, Job, Limits, Sandbox

BACKENDS = ("process", "docker")


def get_sandbox(backend: str = "process", limits: Limits | None = None, **options) -> Sandbox:
    """Open a sandbox; use it as a context manager so pooled containers are removed afterwards."""
    if backend == "process":
        from rl_reason.sandbox.process import ProcessSandbox

        return ProcessSandbox(limits, **options)
    if backend == "docker":
        from rl_reason.sandbox.docker_backend import DockerSandbox

        return DockerSandbox(limits, **options)
    raise ValueError(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["get_sandbox", "Limits", "ExecResult", "Job", "Sandbox", "STATUSES", "BACKENDS"]

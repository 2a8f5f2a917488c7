"""Sandbox fixtures: one sandbox per backend per module; Docker tests skip without dockerd unless
RL_REASON_REQUIRE_DOCKER=1 (set by .ci/run), which turns the skip into a failure."""

from __future__ import annotations

import os

import pytest

from rl_reason.sandbox import Limits, get_sandbox

# wall well above cpu: a CPU-bound control must not turn into a false timeout on a loaded 2-core CI box
TEST_LIMITS = Limits(cpu_s=2, wall_s=6, memory_mb=256, max_tasks=64, output_bytes=1 << 20, disk_mb=64)


def open_backend(backend: str, limits: Limits = TEST_LIMITS):
    if backend == "process":
        return get_sandbox("process", limits=limits)
    from rl_reason.sandbox.process import SandboxUnavailable

    try:
        return get_sandbox("docker", limits=limits, pool_size=1)
    except (SandboxUnavailable, ImportError) as exc:
        if os.environ.get("RL_REASON_REQUIRE_DOCKER") == "1":
            pytest.fail(f"RL_REASON_REQUIRE_DOCKER=1 but the Docker backend is unavailable: {exc}")
        pytest.skip(f"Docker backend unavailable: {exc}")


BACKENDS = ["process", pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(scope="module", params=BACKENDS)
def sandbox(request):
    sb = open_backend(request.param)
    yield sb
    sb.close()

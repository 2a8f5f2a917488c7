"""Docker backend: a warm pool of hardened containers, each running a persistent job runner.

One `docker exec`/`docker run` costs 70-240 ms of daemon work on a small machine, so jobs are
sent as JSON lines to a runner that stays inside the container (runner.py); it gives every job
a fresh work dir, kills everything the job left running and wipes /tmp, /dev/shm and the work
dir afterwards. A container whose job hit a limit, died, or left anything behind is replaced.
"""

from __future__ import annotations

import base64
import json
import queue
import select
import socket
import struct
import threading
import time
import weakref
from collections.abc import Mapping, Sequence

from rl_reason.sandbox.base import ExecResult, Limits, Sandbox, check_files, classify
from rl_reason.sandbox.image import IMAGE, image_fingerprint
from rl_reason.sandbox.process import SandboxUnavailable
from rl_reason.sandbox.seccomp import shipped_profile

POOL_LABEL = "rl-reason.sandbox"
SANDBOX_UID = 10001
RUNNER_OVERHEAD_MB = 32  # the runner's own interpreter shares the container's memory cap
REPLY_GRACE_S = 10.0


class _Slot:
    """One pooled container and the attached stdin/stdout stream of its runner."""

    def __init__(self, container):
        self.container = container
        self.sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        self.raw: socket.socket = self.sock._sock
        self.buffer = b""
        self.stdout = b""

    def send(self, line: bytes) -> None:
        self.raw.sendall(line)

    def read_line(self, timeout: float) -> bytes | None:
        """Next line of the runner's stdout, demultiplexing Docker's 8-byte frame headers."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.stdout:
            while len(self.buffer) >= 8:
                stream, size = self.buffer[0], struct.unpack(">I", self.buffer[4:8])[0]
                if len(self.buffer) < 8 + size:
                    break
                payload, self.buffer = self.buffer[8:8 + size], self.buffer[8 + size:]
                if stream == 1:
                    self.stdout += payload
            if b"\n" in self.stdout:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.raw], [], [], left)[0]:
                return None
            chunk = self.raw.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.stdout = self.stdout.partition(b"\n")
        return line

    def destroy(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # already gone; nothing else to clean
            pass


def _remove_all(client, ids: list[str]) -> None:
    for cid in ids:
        try:
            client.api.remove_container(cid, force=True)
        except Exception:
            pass


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, limits: Limits | None = None, *, pool_size: int | None = None, image: str = IMAGE, client=None):
        super().__init__(limits)
        import docker  # the SDK is only needed by this backend

        try:
            self.client = client or docker.from_env(timeout=60)
            self.client.ping()
        except Exception as exc:
            raise SandboxUnavailable(f"cannot reach dockerd: {exc}") from exc
        try:
            found = self.client.images.get(image)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(f"image {image!r} not found: run `rl-reason sandbox build-image --offline`") from exc
        if image == IMAGE and (found.labels or {}).get("rl-reason.fingerprint") != image_fingerprint():
            raise SandboxUnavailable(f"image {image!r} was built from another runner version: run `rl-reason sandbox build-image --offline`")
        self.image = image
        self.pool_size = pool_size or 2
        self.idle: queue.Queue[_Slot] = queue.Queue()
        self.live: dict[str, _Slot] = {}
        self.lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _remove_all, self.client, [])
        try:
            for _ in range(self.pool_size):
                self.idle.put(self._start())
        except Exception:
            self.close()
            raise

    def default_concurrency(self) -> int:
        return self.pool_size

    def _start(self) -> _Slot:
        lim = self.limits
        tmpfs_opts = f"size={lim.disk_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID}"
        memory = f"{lim.memory_mb + RUNNER_OVERHEAD_MB}m"
        container = self.client.containers.run(
            self.image, detach=True, stdin_open=True, network_mode="none" if not lim.network else "bridge",
            read_only=True, tmpfs={"/work": tmpfs_opts + ",mode=0700,exec", "/tmp": tmpfs_opts + ",mode=1777"},
            mem_limit=memory, memswap_limit=memory, pids_limit=lim.max_tasks + 4, nano_cpus=1_000_000_000,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}", cap_drop=["ALL"], init=True,
            security_opt=["no-new-privileges", f"seccomp={shipped_profile()}"],
            ipc_mode="private", labels={POOL_LABEL: "1"}, environment={}, shm_size=f"{lim.disk_mb}m")
        with self.lock:
            self._finalizer.detach()
            slot = _Slot(container)
            self.live[container.id] = slot
            self._finalizer = weakref.finalize(self, _remove_all, self.client, list(self.live))
        return slot

    def _discard(self, slot: _Slot) -> None:
        with self.lock:
            self.live.pop(slot.container.id, None)
        slot.destroy()

    def run(self, files: Mapping[str, str | bytes] | None = None, command: Sequence[str] = ("python3", "main.py"),
            stdin: str | bytes | None = None) -> ExecResult:
        files = files or {}
        check_files(files)
        lim = self.limits
        command = list(command)
        if command and command[0].startswith("python") and "-I" not in command[1:2]:
            command.insert(1, "-I")
        job = {
            "files": {n: base64.b64encode(c.encode() if isinstance(c, str) else c).decode() for n, c in files.items()},
            "command": command,
            "stdin": None if stdin is None else base64.b64encode(stdin.encode() if isinstance(stdin, str) else stdin).decode(),
            "limits": {"cpu_s": lim.cpu_s, "wall_s": lim.wall_s, "output_bytes": lim.output_bytes, "disk_mb": lim.disk_mb},
        }
        waiting = time.monotonic()
        try:  # the pool is this sandbox's concurrency budget: a run's clocks start once it has a container
            slot = self.idle.get(timeout=120)
        except queue.Empty:
            return ExecResult("sandbox_error", detail="no pooled container became free", slot_wait_s=time.monotonic() - waiting)
        start = time.monotonic()
        try:
            slot.send((json.dumps(job) + "\n").encode())
            line = slot.read_line(lim.wall_s + REPLY_GRACE_S)
        except OSError as exc:
            line, error = None, exc
        else:
            error = None
        wall = time.monotonic() - start
        reply = json.loads(line) if line else None
        result = self._result(reply, wall, error)
        result.slot_wait_s = start - waiting
        healthy = reply is not None and reply.get("clean") and result.status in ("ok", "runtime_error")
        try:
            if healthy:
                self.idle.put(slot)
            else:
                self._discard(slot)
                self.idle.put(self._start())
        except Exception as exc:  # could not refill the pool: report, the pool is one slot smaller
            result.detail = (result.detail + f"; could not replace container: {exc}").strip("; ")
        return result

    def _result(self, reply: dict | None, wall: float, error) -> ExecResult:
        if reply is None:
            # The runner vanished mid-job: the job killed it or the container (a submission's doing).
            if error is not None:
                return ExecResult("sandbox_error", wall_s=wall, detail=f"lost the container: {error}")
            return ExecResult("killed", wall_s=wall, detail="the container's runner died during the job")
        if "runner_error" in reply:
            return ExecResult("sandbox_error", wall_s=wall, detail=reply["runner_error"])
        if "status" in reply:  # the runner could not even start the command
            return ExecResult(reply["status"], exit_code=reply.get("exit_code"), stderr=reply.get("stderr", ""), wall_s=wall)
        status = classify(reply["exit_code"], reply["signal"], timed_out=reply["timed_out"], oom=reply["oom"],
                          output_over=reply["output_over"])
        return ExecResult(status, exit_code=reply["exit_code"], signal=reply["signal"], stdout=reply["stdout"],
                          stderr=reply["stderr"], stdout_truncated=reply["stdout_truncated"],
                          stderr_truncated=reply["stderr_truncated"], wall_s=reply["wall_s"], cpu_s=reply["cpu_s"],
                          peak_memory_mb=reply["peak_memory_mb"])

    def close(self) -> None:
        with self.lock:
            slots = list(self.live.values())
            self.live.clear()
        for slot in slots:
            slot.destroy()
        self._finalizer.detach()

"""Verifier worker: ``python -m rl_reason.verifiers._worker``, one JSON request per stdin line,
one JSON reply per stdout line. The parent kills this process on timeout, so nothing here
needs its own timer.

Being a plain subprocess (not ``multiprocessing``) lets it start from daemonic processes
such as DataLoader and process-pool workers, which may not have multiprocessing children.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

# Address-space cap, so a response that makes sympy allocate without bound dies with
# MemoryError (reported as status "error") instead of swapping the machine.
_MEMORY_LIMIT_BYTES = 4 << 30


def _exit_when_orphaned(parent_pid: int) -> None:
    """A worker whose parent died (SIGKILL, OOM) exits even while busy in sympy."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def main() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    out = sys.stdout.buffer
    try:
        from rl_reason.verifiers.symbolic import compare
    except Exception as e:  # noqa: BLE001 - the parent reports why the worker cannot serve
        out.write(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}).encode() + b"\n")
        out.flush()
        return
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        req = json.loads(line)
        try:
            status, reason = compare(req["pred"], req["gold"], req.get("rel_tol"))
        except MemoryError:
            status, reason = "error", "ran out of memory comparing the answers"
        except RecursionError:
            status, reason = "error", "expression nested too deeply"
        except Exception as e:  # noqa: BLE001 - a reply must come back for every request
            status, reason = "error", f"{type(e).__name__}: {str(e)[:200]}"
        out.write(json.dumps({"id": req["id"], "status": status, "reason": reason}).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()

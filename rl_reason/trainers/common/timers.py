"""Named phase timers (verl's ``marked_timer``): ``with timers("rollout"): ...``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class PhaseTimers:
    """Accumulates wall-clock seconds per named phase until ``pop()`` returns and resets them."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        """``{"time/<phase>": seconds}`` for the phases timed since the last pop."""
        out = {f"time/{k}": v for k, v in self._seconds.items()}
        self._seconds = {}
        return out

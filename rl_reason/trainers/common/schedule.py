"""Learning-rate factor shared by the trainers: linear warm-up, then constant or cosine."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_factor(total_updates: int, warmup: int, schedule: str) -> Callable[[int], float]:
    def factor(update: int) -> float:
        if update < warmup:
            return (update + 1) / warmup
        if schedule == "cosine":
            progress = (update - warmup) / max(1, total_updates - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor

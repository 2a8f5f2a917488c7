"""A seeded prompt sampler whose position is part of the checkpoint, so resume continues exactly."""

from __future__ import annotations

import random
from typing import Any


class PromptSampler:
    """Yields dataset indices epoch by epoch, each epoch a fresh permutation seeded by (seed, epoch).

    The state is two integers, so a resumed run draws the same prompts the uninterrupted run
    would have drawn, across epoch boundaries too (a known resume bug in several peers).
    """

    def __init__(self, size: int, seed: int) -> None:
        if size <= 0:
            raise ValueError("cannot sample prompts from an empty dataset")
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.position = 0

    def _order(self) -> list[int]:
        order = list(range(self.size))
        random.Random(f"{self.seed}-{self.epoch}").shuffle(order)
        return order

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            order = self._order()
            chunk = order[self.position : self.position + k - len(out)]
            out.extend(chunk)
            self.position += len(chunk)
            if self.position >= self.size:
                self.epoch += 1
                self.position = 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["size"] != self.size or state["seed"] != self.seed:
            raise ValueError(
                f"checkpointed sampler was over {state['size']} prompts with seed {state['seed']}, "
                f"this run has {self.size} prompts with seed {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])

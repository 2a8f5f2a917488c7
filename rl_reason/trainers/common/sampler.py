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


class PassRateTable:
    """Pass rate per prompt id, updated from every rollout group (``update_pass_rate``); part of
    the checkpoint, so a resumed run samples from the same table."""

    def __init__(self, ema: float = 1.0) -> None:
        self.ema = ema
        self.rates: dict[str, float] = {}

    def observe(self, key: str, correct: int, total: int) -> None:
        from rl_reason.algorithms.curriculum import update_pass_rate

        rate = update_pass_rate(self.rates.get(key), correct, total, self.ema)
        if rate is not None:
            self.rates[key] = rate

    def get(self, key: str) -> float | None:
        return self.rates.get(key)

    def metrics(self, solved: float, hopeless: float) -> dict[str, float]:
        rates = list(self.rates.values())
        n = max(len(rates), 1)
        return {"curriculum/prompts_seen": float(len(rates)),
                "curriculum/solved_frac": sum(r >= solved for r in rates) / n,
                "curriculum/hopeless_frac": sum(r <= hopeless for r in rates) / n}

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "rates": dict(self.rates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rates = {str(k): float(v) for k, v in state["rates"].items()}


class CurriculumSampler(PromptSampler):
    """Prompt draws steered by a ``PassRateTable`` through a weight per prompt
    (``rl_reason.algorithms.curriculum.CURRICULUM_WEIGHTS``).

    ``skip``: the seeded epoch order of ``PromptSampler``, passing over prompts of weight 0
    (measured solved or hopeless). When a whole epoch's worth of prompts in a row is skipped,
    the rest of the draw takes prompts as they come (counted in ``fallbacks``), so training
    never stalls. ``middle``: k distinct prompts drawn with probability proportional to the
    weight (Efraimidis-Spirakis keys u^(1/w)), seeded by (seed, draw number).
    ``keys[i]`` is the prompt id of sampler index i. The table is shared, not owned: its state
    is checkpointed by whoever updates it.
    """

    def __init__(self, size: int, seed: int, keys: list[str], table: PassRateTable, mode: str,
                 solved: float = 1.0, hopeless: float = 0.0, floor: float = 0.05) -> None:
        from rl_reason.algorithms.curriculum import CURRICULUM_WEIGHTS

        super().__init__(size, seed)
        if len(keys) != size:
            raise ValueError(f"need one prompt id per sampler index: {len(keys)} ids for {size} prompts")
        self.keys, self.table, self.mode = keys, table, mode
        weight_fn = CURRICULUM_WEIGHTS.get(mode)
        self._weight = lambda i: weight_fn(table.get(keys[i]), solved=solved, hopeless=hopeless, floor=floor)
        self.draws = 0
        self.skipped = 0
        self.fallbacks = 0

    def take(self, k: int) -> list[int]:
        return self._take_weighted(k) if self.mode == "middle" else self._take_skipping(k)

    def _take_skipping(self, k: int) -> list[int]:
        out: list[int] = []
        run = 0  # prompts skipped in a row
        while len(out) < k:
            (i,) = super().take(1)
            if self._weight(i) > 0 or run >= self.size:
                self.fallbacks += self._weight(i) == 0
                out.append(i)
                run = 0
            else:
                self.skipped += 1
                run += 1
        return out

    def _take_weighted(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            rng = random.Random(f"{self.seed}-curriculum-{self.draws}")
            self.draws += 1
            keyed = []
            for i in range(self.size):
                w = self._weight(i)
                u = rng.random()
                if w > 0:
                    keyed.append((u ** (1.0 / w), i))
            if not keyed:  # every weight 0 (floor 0, all solved or hopeless): uniform
                keyed = [(rng.random(), i) for i in range(self.size)]
            keyed.sort(reverse=True)
            out.extend(i for _, i in keyed[: k - len(out)])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "draws": self.draws, "skipped": self.skipped, "fallbacks": self.fallbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.draws = int(state.get("draws", 0))
        self.skipped = int(state.get("skipped", 0))
        self.fallbacks = int(state.get("fallbacks", 0))

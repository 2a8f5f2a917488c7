"""Checkpoints that resume exactly: HF model + optimizer + scheduler + RNG + trainer state.

Layout of ``<run>/checkpoints/step_000040/``:
  ``model/``         ``save_pretrained`` safetensors + tokenizer (loadable by transformers and vLLM)
  ``optimizer.pt``   optimizer and scheduler state dicts
  ``rng.pt``         Python, NumPy, torch CPU (and CUDA) generator states
  ``trainer_state.pt`` step, sampler position, dynamic-sampling buffer, anything else the trainer adds
Each folder is written through ``rl_reason.io.atomic_dir``: a crash mid-save leaves the
previous checkpoint intact, and only complete folders are ever found by ``latest()``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_reason.io import atomic_dir

_STEP_DIR = re.compile(r"^step_(\d+)$")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Saves ``step_XXXXXX`` folders under ``root`` and keeps the newest ``keep_last``."""

    def __init__(self, root: str | os.PathLike, keep_last: int = 2) -> None:
        self.root = Path(root)
        self.keep_last = keep_last

    def steps(self) -> list[int]:
        if not self.root.is_dir():
            return []
        found = (_STEP_DIR.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, step: int) -> Path:
        return self.root / f"step_{step:06d}"

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def save(self, step: int, model, tokenizer, optimizer, scheduler, trainer_state: dict[str, Any]) -> Path:
        target = self.path(step)
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp / "model", safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp / "model")
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
            torch.save(rng_state(), tmp / "rng.pt")
            torch.save({"step": step, **trainer_state}, tmp / "trainer_state.pt")
        for old in self.steps()[: -self.keep_last]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return target

    @staticmethod
    def load(path: str | os.PathLike, model, optimizer, scheduler) -> dict[str, Any]:
        """Restore weights, optimizer, scheduler and RNG in place; return the trainer state."""
        from safetensors.torch import load_model

        path = Path(path)
        if not (path / "trainer_state.pt").is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no trainer_state.pt)")
        shards = sorted((path / "model").glob("*.safetensors"))
        if len(shards) == 1:
            load_model(model, shards[0], strict=False)
        else:
            from transformers.modeling_utils import load_sharded_checkpoint

            load_sharded_checkpoint(model, path / "model", strict=False)
        opt = torch.load(path / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
        set_rng_state(torch.load(path / "rng.pt", weights_only=False))
        return torch.load(path / "trainer_state.pt", weights_only=False)

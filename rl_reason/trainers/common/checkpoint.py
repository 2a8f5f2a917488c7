"""Checkpoints that resume exactly: HF model + optimizer + scheduler + RNG + trainer state.

Layout of ``<run>/checkpoints/step_000040/``:
  ``model/``         ``save_pretrained`` safetensors + tokenizer (loadable by transformers and vLLM)
  ``optimizer.pt``   optimizer and scheduler state dicts
  ``rng.pt``         Python, NumPy, torch CPU (and CUDA) generator states
  ``trainer_state.pt`` step, sampler position, dynamic-sampling buffer, anything else the trainer adds
  ``rank_N/``        rng.pt and trainer_state.pt of data-parallel rank N > 0
  ``deepspeed/``     DeepSpeed's own checkpoint (per-rank optimizer shards) under that engine
  ``fsdp2/``         every rank's weight and optimizer shards (torch.distributed.checkpoint) under FSDP2
  ``critic/``        the same for each further engine a trainer has (PPO's critic)
Each folder is written through ``rl_reason.io.atomic_dir``: a crash mid-save leaves the
previous checkpoint intact, and only complete folders are ever found by ``latest()``.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_reason.distributed.setup import barrier, is_main, rank, world_size
from rl_reason.io import atomic_dir
from rl_reason.trainers.common.metrics import STEP_DIR, rewind_run_logs


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
        found = (STEP_DIR.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, step: int) -> Path:
        return self.root / f"step_{step:06d}"

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def save(self, step: int, model, tokenizer, optimizer, scheduler, trainer_state: dict[str, Any]) -> Path:
        """Single-process save of a model with a plain torch optimizer and scheduler."""
        from rl_reason.distributed.engine import TorchEngine

        return self.save_engine(step, TorchEngine(model, optimizer, scheduler), tokenizer, trainer_state)

    def save_engine(self, step: int, engine, tokenizer, trainer_state: dict[str, Any],
                    extra_engines: dict[str, Any] | None = None) -> Path:
        """Save through a ``rl_reason.distributed`` engine; a collective when several ranks run.

        Rank 0 owns the folder and the HF model; every rank writes its own RNG and trainer state
        (``rank_N/`` for N > 0: samplers and buffers are per rank) and, under DeepSpeed, its
        optimizer shard. The folder is renamed into place only after every rank has written.
        ``extra_engines`` (e.g. PPO's critic) are saved the same way under ``<name>/``.
        """
        target = self.path(step)
        with shared_atomic_dir(target) as tmp:
            engine.export_model(tmp / "model", tokenizer)
            engine.save_state(tmp)
            for name, other in (extra_engines or {}).items():
                (tmp / name).mkdir(exist_ok=True)
                other.export_model(tmp / name / "model")
                other.save_state(tmp / name)
            own = tmp / _rank_dir(rank())
            own.mkdir(exist_ok=True)
            torch.save(rng_state(), own / "rng.pt")
            torch.save({"step": step, "world_size": world_size(), **trainer_state}, own / "trainer_state.pt")
        if is_main():
            for old in self.steps()[: -self.keep_last]:
                shutil.rmtree(self.path(old), ignore_errors=True)
        return target

    def resume(self, mode: str, engine, run_dir: str | os.PathLike,
               extra_engines: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Restore the checkpoint ``mode`` names ('auto': the newest here, 'never', or a folder)
        into ``engine`` and cut the records of ``run_dir`` back to its step (``rewind_run_logs``);
        the trainer state, or None (then the records are emptied: the run starts over)."""
        path = None if mode == "never" else (self.latest() if mode == "auto" else Path(mode))
        state = None if path is None else self.load_engine(path, engine, extra_engines)
        if is_main():  # the one writer of the run's records
            rewind_run_logs(run_dir, -1 if state is None else int(state["step"]))
            if state is not None:
                print(f"resuming from step {int(state['step'])} ({path})", file=sys.stderr, flush=True)
        return state

    @staticmethod
    def load(path: str | os.PathLike, model, optimizer, scheduler) -> dict[str, Any]:
        """Restore weights, optimizer, scheduler and RNG in place; return the trainer state."""
        from rl_reason.distributed.engine import TorchEngine

        return CheckpointManager.load_engine(path, TorchEngine(model, optimizer, scheduler))

    @staticmethod
    def load_engine(path: str | os.PathLike, engine, extra_engines: dict[str, Any] | None = None) -> dict[str, Any]:
        """Restore this rank's weights, optimizer, scheduler and RNG (and those of
        ``extra_engines``, saved under ``<name>/``); return its trainer state."""
        path = Path(path)
        own = path / _rank_dir(rank())
        if not (path / "trainer_state.pt").is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no trainer_state.pt)")
        saved_world = torch.load(path / "trainer_state.pt", weights_only=False).get("world_size", 1)
        if saved_world != world_size() or not (own / "trainer_state.pt").is_file():
            raise ValueError(f"{path} was saved by {saved_world} rank(s); resume it with the same number, not {world_size()}")
        engine.load_state(path, path / "model")
        for name, other in (extra_engines or {}).items():
            other.load_state(path / name, path / name / "model")
        set_rng_state(torch.load(own / "rng.pt", weights_only=False))
        return torch.load(own / "trainer_state.pt", weights_only=False)


def _rank_dir(rank_: int) -> str:
    """Rank 0's files sit at the top (the single-process layout); rank N's under ``rank_N/``."""
    return "." if rank_ == 0 else f"rank_{rank_}"


@contextlib.contextmanager
def shared_atomic_dir(target: Path) -> Iterator[Path]:
    """``atomic_dir`` shared by all ranks: rank 0 creates and finally renames the temporary
    folder; barriers make every rank see it before writing and finish before the rename."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_dir(target)) if is_main() else target.parent / f".{target.name}.tmp"
        barrier("checkpoint folder created")
        yield tmp
        barrier("checkpoint written by every rank")
    barrier("checkpoint renamed into place")

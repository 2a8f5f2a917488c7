"""Metric sinks shared by every trainer: metrics.jsonl always, TensorBoard and W&B on request."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rl_reason.io import JsonlAppender, JsonlError, atomic_write_text, read_jsonl

# A run folder's records of its steps: rows tagged with "step", and one eval folder per step.
_STEP_FILES = ("metrics.jsonl", "samples.jsonl")
STEP_DIR = re.compile(r"^step_(\d+)$")  # a checkpoint's or an eval's per-step folder


def rewind_run_logs(run_dir: str | os.PathLike, last_step: int) -> None:
    """Cut a run folder's records back to ``last_step`` (-1: a run starting over): a resumed run
    re-does the later steps from its checkpoint and writes them again, so rows of those steps go
    from the step files and their ``eval/step_N`` folders are removed (the eval harness would
    otherwise keep their samples as already done)."""
    run_dir = Path(run_dir)
    for name in _STEP_FILES:
        truncate_metrics(run_dir / name, last_step)
    if (run_dir / "eval").is_dir():
        for folder in (run_dir / "eval").iterdir():
            found = STEP_DIR.match(folder.name)
            if found and int(found.group(1)) > last_step:
                shutil.rmtree(folder)


def truncate_metrics(path: str | os.PathLike, last_step: int) -> None:
    """Drop the rows of ``path`` logged after ``last_step`` (atomic rewrite; the original is kept
    until replaced)."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for _, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise row
        if int(row.get("step", 0)) <= last_step:
            kept.append(row)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


class MetricsLogger:
    """Writes one flat ``{name: number}`` dict per step to every enabled sink.

    Names are namespaced (``reward/mean``, ``time/rollout``) as in cleanrl/verl, so TensorBoard
    groups them; non-finite values are written to JSONL as null rather than breaking the file.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True, wandb: bool = False,
                 wandb_project: str = "rl-reason", config: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        self.jsonl = JsonlAppender(self.run_dir / "metrics.jsonl", fsync=False)
        self.tb = None
        self.wandb_run = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError:
                raise RuntimeError("log.wandb is true but the wandb package is not installed (pip install wandb)") from None
            self.wandb_run = wandb_lib.init(project=wandb_project, dir=str(self.run_dir), config=config or {},
                                            name=self.run_dir.name, resume="allow")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step}
        for k, v in metrics.items():
            v = float(v)
            row[k] = v if math.isfinite(v) else None
        self.jsonl.write(row)
        if self.tb is not None:
            for k, v in metrics.items():
                if math.isfinite(float(v)):
                    self.tb.add_scalar(k, float(v), step)
            self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


class NoMetrics:
    """Metric sink of ranks > 0: rank 0 logs the ranks' averaged metrics."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def open_run_logs(run_dir: Path, cfg: Any, main: bool) -> MetricsLogger | NoMetrics:
    """Start a run's logs: rank 0 writes the resolved ``config.yaml`` and gets the real sinks
    (``cfg.log``: tensorboard, wandb, wandb_project); other ranks get a ``NoMetrics``."""
    if not main:
        return NoMetrics()
    import yaml

    from rl_reason.config import to_dict

    config = to_dict(cfg)
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    return MetricsLogger(run_dir, cfg.log.tensorboard, cfg.log.wandb, cfg.log.wandb_project, config)

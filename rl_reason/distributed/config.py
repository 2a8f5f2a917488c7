"""The ``distributed:`` section of a trainer config (torch-free, so ``--help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rl_reason.config import ConfigError, cfg_field


@dataclass
class DistributedConfig:
    engine: Literal["torch", "deepspeed", "fsdp2"] = cfg_field(
        "torch", "optimizer engine: 'torch' (AdamW; DDP when launched on several ranks), 'deepspeed' (ZeRO, see "
        "deepspeed_config) or 'fsdp2' (torch's fully_shard: weights, gradients and optimizer state sharded over the "
        "ranks; launch with torchrun; no LoRA)")
    deepspeed_config: str = cfg_field(
        "recipes/deepspeed/zero2.json",
        "DeepSpeed JSON (ZeRO stage, offload); 'auto' values are filled from train.* (micro-batch, clipping, lr, dtype)")
    backend: Literal["auto", "gloo", "nccl"] = cfg_field("auto", "collective backend: auto = NCCL when CUDA is present, else gloo")
    timeout_s: float = cfg_field(
        600.0, "seconds any collective may wait before the run fails with a message (a hung rank becomes an error)")

    def __post_init__(self):
        if self.timeout_s <= 0:
            raise ConfigError(f"distributed.timeout_s must be positive, got {self.timeout_s}")
        if self.engine == "deepspeed" and not self.deepspeed_config:
            raise ConfigError("distributed.engine 'deepspeed' needs distributed.deepspeed_config (a JSON file)")

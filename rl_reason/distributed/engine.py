"""One training-engine interface so a trainer's optimizer step is swappable.

    engine.zero_grad(); for micro in micros: engine.backward(loss(engine.module, micro))
    grad_norm = engine.step()          # average over ranks, clip, optimizer step, LR scheduler step

``TorchEngine``: AdamW (or any torch optimizer) in this process; with several ranks it averages
the gradients once per step (one bucketed all-reduce, what DDP does, but independent of how the
loss calls the model: ``token_logprobs`` runs the decoder and head itself, bypassing a DDP
wrapper's forward). ``DeepSpeedEngine``:
DeepSpeed ZeRO 1/2/3 with optional CPU offload from a JSON recipe (``recipes/deepspeed/``).
``FSDP2Engine`` (``fsdp2.py``): torch's ``fully_shard``, parameters, gradients and optimizer
state sharded over the ranks (ZeRO-3's layout without DeepSpeed).
Losses follow ``rl_reason.algorithms.aggregation``: each micro-batch's loss is already divided
by the step's global normaliser, so neither engine divides by the accumulation steps.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rl_reason.distributed.setup import collective, is_main, rank, world_size

OptimizerFn = Callable[[Any], torch.optim.Optimizer]  # parameters -> optimizer
SchedulerFn = Callable[[torch.optim.Optimizer], Any]  # optimizer -> LR scheduler


class TorchEngine:
    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                 max_grad_norm: float = 0.0) -> None:
        self.module = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_grad_norm = max_grad_norm
        if world_size() > 1:
            _check_replicas_equal(model)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        """Clip (max_grad_norm 0 = no clipping), step optimizer and scheduler; the pre-clip norm."""
        if world_size() > 1:
            _average_gradients([p for p in self.module.parameters() if p.requires_grad])
        clip = self.max_grad_norm if self.max_grad_norm > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.module.parameters(), clip))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return norm

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def full_weights(self) -> contextlib.AbstractContextManager:
        """The module holds its full weights already (see ``DeepSpeedEngine.full_weights``)."""
        return contextlib.nullcontext()

    def export_model(self, directory: Path, tokenizer=None, merged: bool = False) -> None:
        """Rank 0 writes the HF model (transformers- and vLLM-loadable); DDP replicas are equal.
        A LoRA model writes its adapter alone, or with ``merged`` a plain model with it merged."""
        if is_main():
            _save_model(self.module, directory, tokenizer, merged)

    def save_state(self, directory: Path) -> None:
        if is_main():
            state = {"optimizer": self.optimizer.state_dict(),
                     "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}
            torch.save(state, directory / "optimizer.pt")

    def load_state(self, directory: Path, model_dir: Path) -> None:
        from safetensors.torch import load_model

        from rl_reason.models.lora import is_adapter_dir, load_adapter

        shards = sorted(model_dir.glob("*.safetensors"))
        if is_adapter_dir(model_dir):
            load_adapter(self.module, model_dir)
        elif len(shards) == 1:
            load_model(self.module, shards[0], strict=False)
        else:
            from transformers.modeling_utils import load_sharded_checkpoint

            load_sharded_checkpoint(self.module, model_dir, strict=False)
        state = torch.load(directory / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


def _save_model(module: torch.nn.Module, directory: Path, tokenizer, merged: bool) -> None:
    from rl_reason.models.lora import merged_copy

    (merged_copy(module) if merged else module).save_pretrained(directory, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)


def _average_gradients(params: list[torch.nn.Parameter], bucket_numel: int = 2**24) -> None:
    """Mean of every parameter's gradient over the ranks, in flat buckets (None counts as 0)."""
    import torch.distributed as tdist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    start = 0
    while start < len(params):
        bucket, numel = [], 0
        while start < len(params) and (not bucket or numel + params[start].numel() <= bucket_numel):
            bucket.append(params[start].grad)
            numel += params[start].numel()
            start += 1
        flat = torch.cat([g.reshape(-1) for g in bucket])
        with collective("all_reduce(gradients)"):
            tdist.all_reduce(flat)
        flat /= world_size()
        for g, synced in zip(bucket, flat.split([g.numel() for g in bucket])):
            g.copy_(synced.view_as(g))


def _check_replicas_equal(model: torch.nn.Module) -> None:
    """Data parallelism needs identical initial weights on every rank: compare a checksum."""
    import torch.distributed as tdist

    local = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    if local.device.type == "cpu" and tdist.get_backend() == "nccl":
        local = local.cuda()
    high, low = local.clone(), local.clone()
    with collective("all_reduce(weight checksum)"):
        tdist.all_reduce(high, op=tdist.ReduceOp.MAX)
        tdist.all_reduce(low, op=tdist.ReduceOp.MIN)
    if not torch.equal(high, low):
        raise RuntimeError(f"rank {rank()}: the ranks loaded different initial weights (checksums {float(low)} .. {float(high)}); "
                           "seed model initialisation identically")


def deepspeed_config(path: str | Path, *, micro_batch_size: int, grad_accum_steps: int, max_grad_norm: float,
                     lr: float, betas: tuple[float, float], weight_decay: float, dtype: str) -> dict[str, Any]:
    """Load a DeepSpeed JSON recipe and fill its "auto" values from the trainer's config.

    Batch sizes are bookkeeping only here (the trainer feeds micro-batches itself), but
    DeepSpeed checks train_batch_size = micro * accumulation * world size.
    """
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"distributed.deepspeed_config: {path} does not exist (see recipes/deepspeed/)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    auto = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum_steps,
        "train_batch_size": micro_batch_size * grad_accum_steps * world_size(),
        "gradient_clipping": max_grad_norm,
    }
    for key, value in auto.items():
        if cfg.get(key, "auto") == "auto":
            cfg[key] = value
    for key, wanted in (("bf16", dtype == "bfloat16"), ("fp16", dtype == "float16")):
        section = cfg.setdefault(key, {})
        if section.get("enabled", "auto") == "auto":
            section["enabled"] = wanted
    if "optimizer" in cfg:
        params = cfg["optimizer"].setdefault("params", {})
        for key, value in (("lr", lr), ("betas", list(betas)), ("weight_decay", weight_decay)):
            if params.get(key, "auto") == "auto":
                params[key] = value
    return cfg


class DeepSpeedEngine:
    """DeepSpeed ZeRO. Without an "optimizer" section in the JSON the trainer's torch optimizer
    is wrapped; with one (the offload recipes: DeepSpeedCPUAdam), DeepSpeed builds it."""

    def __init__(self, model: torch.nn.Module, config: dict[str, Any], optimizer_fn: OptimizerFn,
                 scheduler_fn: SchedulerFn | None) -> None:
        import deepspeed
        import deepspeed.ops

        if not torch.cuda.is_available():
            # gloo does the CPU collectives; the shared-memory op would first compile for minutes.
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        optimizer = None if "optimizer" in config else optimizer_fn(model.parameters())
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler_fn, config=config,
            model_parameters=[p for p in model.parameters() if p.requires_grad] if optimizer is None else None)
        self.module = self.engine.module
        self.zero_stage = self.engine.zero_optimization_stage()

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    def backward(self, loss: torch.Tensor) -> None:
        # The loss is already normalised over the whole step (aggregation.py): no 1/GAS here.
        boundary = self.engine.is_gradient_accumulation_boundary()
        # DeepSpeedEngine.forward() opens each micro-batch with this call, in which ZeRO-3 counts
        # the previous backward as a micro-step (DeepSpeed >= 0.18): at micro-step 0 a reduced
        # gradient partition is copied, later ones are added. The trainers run the module's
        # decoder and head themselves, never the engine's forward, so without it every micro-batch
        # was micro-step 0 and overwrote the one before: the update kept the last micro-batch's
        # gradient alone (ZeRO-1/2 add gradients in place and were unaffected).
        clear_backward_seen = getattr(self.engine.optimizer, "clear_backward_seen_flag", None)
        if clear_backward_seen is not None:
            clear_backward_seen()
        self.engine.backward(loss, scale_wrt_gas=False)
        if not boundary:
            # DeepSpeed counts micro-batches in step() (a no-op before the boundary); the real
            # step is ours, after the gradient_accumulation_steps-th backward.
            self.engine.step()

    def step(self) -> float:
        if not self.engine.is_gradient_accumulation_boundary():
            raise RuntimeError(
                f"DeepSpeed step after a number of backward passes that is not gradient_accumulation_steps="
                f"{self.engine.gradient_accumulation_steps()}: run exactly that many micro-batches per update")
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def full_weights(self) -> contextlib.AbstractContextManager:
        """Inside it the module holds full weights and runs without ZeRO-3's per-module hooks.

        For generation and weight sync. ZeRO-3 otherwise all-gathers each module's shard on every
        forward, a collective that every rank must join: ranks whose HF rollouts stop after
        different numbers of decode steps would wait on each other forever. Gathering once
        (DeepSpeed's ``unwrap_model_for_generation``, what TRL and OpenRLHF do) costs one full
        copy of the weights per rank for the duration. Stages 1-2 keep full weights anyway.
        """
        if self.zero_stage != 3:
            return contextlib.nullcontext()
        return _zero3_full_weights(self.engine)

    def export_model(self, directory: Path, tokenizer=None, merged: bool = False) -> None:
        """HF weights on rank 0 (as ``TorchEngine.export_model``); ZeRO-3 first gathers the shards
        (a collective on every rank)."""
        import deepspeed

        params = list(self.module.parameters())
        gather = deepspeed.zero.GatheredParameters(params) if self.zero_stage == 3 else contextlib.nullcontext()
        with gather:
            if is_main():
                _save_model(self.module, directory, tokenizer, merged)

    def save_state(self, directory: Path) -> None:
        # Every rank writes its own optimizer shard; module and scheduler states go with them.
        self.engine.save_checkpoint(str(directory), tag="deepspeed", save_latest=False)

    def load_state(self, directory: Path, model_dir: Path) -> None:
        path, _ = self.engine.load_checkpoint(str(directory), tag="deepspeed", load_optimizer_states=True,
                                              load_lr_scheduler_states=True)
        if path is None:
            raise FileNotFoundError(f"{directory}/deepspeed: no DeepSpeed checkpoint for this rank/world size")


@contextlib.contextmanager
def _zero3_full_weights(engine):
    """DeepSpeed's ``unwrap_model_for_generation`` plus the hook it leaves behind.

    It removes the per-module fetch/release hooks but keeps the root module's start-of-forward
    hook, whose trace bookkeeping (``reset_step``) compares module orders across ranks, a
    collective, on every forward until a trace is complete: ranks decoding different numbers of
    steps would still deadlock on it (found by the 2-rank ZeRO-3 test). It is lifted for the
    duration too and put back with the same function.
    """
    from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

    offload = getattr(engine.optimizer, "parameter_offload", engine.optimizer)
    with unwrap_model_for_generation(engine):
        handle = offload.fwd_pre_hook
        start_of_forward = offload.module._forward_pre_hooks[handle.id]
        handle.remove()
        try:
            yield
        finally:
            offload.fwd_pre_hook = offload.module.register_forward_pre_hook(start_of_forward)


def build_train_engine(model: torch.nn.Module, dist_cfg, *, optimizer_fn: OptimizerFn, scheduler_fn: SchedulerFn | None,
                       micro_batch_size: int, grad_accum_steps: int, max_grad_norm: float, lr: float,
                       betas: tuple[float, float], weight_decay: float, dtype: str):
    """The engine named by ``dist_cfg.engine`` (a ``DistributedConfig``)."""
    if dist_cfg.engine == "torch":
        optimizer = optimizer_fn(model.parameters())
        return TorchEngine(model, optimizer, scheduler_fn(optimizer) if scheduler_fn else None, max_grad_norm)
    if dist_cfg.engine == "fsdp2":
        from rl_reason.distributed.fsdp2 import FSDP2Engine

        return FSDP2Engine(model, optimizer_fn, scheduler_fn, max_grad_norm)
    config = deepspeed_config(dist_cfg.deepspeed_config, micro_batch_size=micro_batch_size, grad_accum_steps=grad_accum_steps,
                              max_grad_norm=max_grad_norm, lr=lr, betas=betas, weight_decay=weight_decay, dtype=dtype)
    return DeepSpeedEngine(model, config, optimizer_fn, scheduler_fn)

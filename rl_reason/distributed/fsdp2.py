"""FSDP2: torch's ``fully_shard`` behind the train-engine interface of ``engine.py``.

Every rank holds 1/N of each parameter, gradient and optimizer state (DTensors sharded on dim 0
over a one-dimensional device mesh; NCCL on GPUs, gloo on CPU). A sharded module all-gathers its
parameters in a forward pre-hook and reduce-scatters (averages) its gradients after its backward.

The trainers do not call the model's ``forward``: ``token_logprobs`` runs ``get_decoder()`` and
``get_output_embeddings()`` itself, and the reward/critic heads run ``base_model`` and ``score``.
So every module they call directly is its own sharding unit, each decoder layer too (peak memory
is one layer's full weights): the embedding (with the LM head when the two are tied: a tied
weight must sit in one unit), the decoder (its final norm), the head. The model's own root holds
no parameters and is never sharded (its forward runs only during generation).

Like ZeRO-3 (see ``lockstep``), each unit's forward and backward are collectives: every rank
runs the same number of them, and the LM head is projected in a fixed number of chunks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from rl_reason.distributed.setup import collective, is_main, world_size

CHECKPOINT_DIR = "fsdp2"  # torch.distributed.checkpoint folder: every rank's model and optimizer shards


def full_state_items(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``module.state_dict()`` items with every DTensor (an FSDP2 shard) gathered whole, one
    collective per tensor that all ranks run in the same order; plain tensors pass through."""
    from torch.distributed.tensor import DTensor

    for name, tensor in module.state_dict().items():
        yield name, tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def _device_mesh(device: torch.device):
    import torch.distributed as tdist
    from torch.distributed.device_mesh import init_device_mesh

    if not tdist.is_initialized():
        # One plain process: a one-rank group, so the same sharded code path runs (and is tested).
        tdist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", store=tdist.HashStore(), rank=0, world_size=1
        )
    return init_device_mesh(device.type, (world_size(),))


def shard_model(model: torch.nn.Module, mesh) -> list[torch.nn.Module]:
    """``fully_shard`` each unit the trainers call (see the module doc); the sharded modules."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    backbone = model.base_model
    layers = getattr(backbone, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(
            f"distributed.engine fsdp2: {type(backbone).__name__} has no 'layers' list of decoder "
            "layers to shard (a transformers decoder-only model is expected)"
        )
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is embed.weight

    def shard(unit):
        # reshard_after_forward explicit: no unit is treated as a root that keeps its full weights.
        fully_shard(unit, mesh=mesh, reshard_after_forward=True)
        return unit[0] if isinstance(unit, list) else unit

    units = [shard(layer) for layer in layers]
    units.append(shard([embed, head] if tied else embed))
    units.append(shard(backbone))
    units += [
        shard(child)
        for child in model.children()
        if child is not backbone
        and not (tied and child is head)
        and any(not isinstance(p, DTensor) for p in child.parameters())
    ]
    left = [n for n, p in model.named_parameters() if not isinstance(p, DTensor)]
    if left:
        raise ValueError(f"distributed.engine fsdp2: parameters outside any shardable submodule: {left[:5]}")
    return units


class FSDP2Engine:
    """The ``TorchEngine`` interface over a model sharded with ``fully_shard`` (LoRA: not yet)."""

    def __init__(self, model: torch.nn.Module, optimizer_fn, scheduler_fn, max_grad_norm: float = 0.0) -> None:
        from rl_reason.distributed.engine import _check_replicas_equal
        from rl_reason.models.lora import is_lora

        if is_lora(model):
            raise ValueError(
                "distributed.engine fsdp2 does not support LoRA adapters (model.lora.r > 0) yet: "
                "use distributed.engine torch or deepspeed"
            )
        device = next(model.parameters()).device
        mesh = _device_mesh(device)
        if world_size() > 1:
            _check_replicas_equal(model)
        self.units = shard_model(model, mesh)
        self.module = model
        # After sharding: the optimizer steps the local shards (its state is sharded too).
        self.optimizer = optimizer_fn(model.parameters())
        self.scheduler = scheduler_fn(self.optimizer) if scheduler_fn else None
        self.max_grad_norm = max_grad_norm

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        # Each unit reduce-scatters (averages over ranks) its gradient when its backward is done.
        loss.backward()

    def step(self) -> float:
        """Clip by the global gradient norm (max_grad_norm 0 = no clipping), step; the pre-clip norm."""
        from torch.distributed.tensor import DTensor

        params = [p for p in self.module.parameters() if p.grad is not None]
        with collective("all_reduce(gradient norm)"):
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if isinstance(norm, DTensor):  # a partial norm of this rank's shards: reduce over ranks
                norm = norm.full_tensor()
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(params, self.max_grad_norm, norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(norm)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        """Every unit all-gathered once (a collective) and kept whole until the context ends.

        Inside it the forward hooks find the weights gathered and run no collective, so ranks
        may generate different numbers of tokens (as ``DeepSpeedEngine.full_weights``), and
        ``named_parameters()`` gives full tensors. Costs one full copy of the weights per rank.
        (``state_dict()`` gives the shards, as outside: ``full_state_items`` gathers them.)
        """
        with collective("all_gather(full weights)"):
            for unit in self.units:
                unit.unshard()
        for unit in self.units:
            unit.set_reshard_after_forward(False, recurse=False)
        try:
            yield
        finally:
            for unit in self.units:
                unit.set_reshard_after_forward(True, recurse=False)
                unit.reshard()

    def _full_state_dict(self) -> dict[str, torch.Tensor]:
        """The unsharded weights on rank 0 (on CPU), an empty dict elsewhere: a collective."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        with collective("all_gather(state dict)"):
            return get_model_state_dict(self.module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def export_model(self, directory: Path, tokenizer=None, merged: bool = False) -> None:
        """HF weights on rank 0, gathered from every rank's shards (a collective on every rank)."""
        state = self._full_state_dict()
        if is_main():
            self.module.save_pretrained(directory, state_dict=state, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(directory)

    def save_state(self, directory: Path) -> None:
        """Every rank's parameter and optimizer shards (torch.distributed.checkpoint), and the
        scheduler (the same on every rank) from rank 0: what an exact resume needs."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(self.module, self.optimizer)
        with collective("save sharded checkpoint"):
            dcp.save(
                {"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(directory / CHECKPOINT_DIR)
            )
        if is_main() and self.scheduler is not None:
            torch.save(self.scheduler.state_dict(), directory / CHECKPOINT_DIR / "scheduler.pt")

    def load_state(self, directory: Path, model_dir: Path) -> None:
        """The shards ``save_state`` wrote (same world size); ``model_dir`` is not read: the
        sharded weights are exact in every dtype."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        path = directory / CHECKPOINT_DIR
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no FSDP2 checkpoint (was it saved with distributed.engine fsdp2?)")
        model_state, optimizer_state = get_state_dict(self.module, self.optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
        with collective("load sharded checkpoint"):
            dcp.load(state, checkpoint_id=str(path))
            set_state_dict(
                self.module, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
            )
        if self.scheduler is not None:
            self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))

"""LoRA adapters through ``peft``: wrap a model, run its base with the adapter off, save, load, merge.

The reference model of a LoRA run is the policy itself with its adapter disabled
(``adapter_disabled``), so no second copy of the weights is held. peft injects its layers into
the transformers model in place, so code that calls the model's own submodules
(``get_decoder()``, ``score``) runs through the adapters too; ``unwrap`` gives that model.
A LoRA checkpoint is the adapter alone (``PeftModel.save_pretrained``: ``adapter_config.json``
and ``adapter_model.safetensors``); ``merged_copy`` gives a plain model for export.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import torch

ADAPTER_CONFIG = "adapter_config.json"


def is_lora(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a peft model (peft is imported only when it is installed and used)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def apply_lora(model: torch.nn.Module, lora, task: str = "causal_lm") -> torch.nn.Module:
    """``model`` with fresh LoRA adapters per ``lora`` (a ``LoRAConfig``: r, alpha, dropout,
    target_modules); the model itself when ``lora.r`` is 0 or it has adapters already.

    Only the adapters train (the base is frozen). ``task`` "seq_cls" also trains the scalar
    ``score`` head of a reward model or critic (peft's modules_to_save for that task). The
    adapters' B matrices start at zero, so the wrapped model computes what the base does.
    """
    if lora.r == 0 or is_lora(model):
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    targets = "all-linear" if list(lora.target_modules) == ["all-linear"] else list(lora.target_modules)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type=TaskType.SEQ_CLS if task == "seq_cls" else TaskType.CAUSAL_LM,
    )
    if getattr(model, "is_loaded_in_4bit", False):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    try:
        return get_peft_model(model, config)
    except ValueError as e:  # e.g. target_modules naming no module of this architecture
        raise ValueError(f"model.lora.target_modules={list(lora.target_modules)}: {e}") from None


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft model (its layers carry the adapters), else ``model``."""
    return model.get_base_model() if is_lora(model) else model


def adapter_disabled(model: torch.nn.Module | None) -> contextlib.AbstractContextManager:
    """Inside it a LoRA model computes its base model (the adapter off); a no-op for others."""
    return model.disable_adapter() if model is not None and is_lora(model) else contextlib.nullcontext()


def load_adapter(model: torch.nn.Module, directory: str | os.PathLike) -> None:
    """Load a saved adapter (``save_pretrained`` folder) into ``model``'s adapters, in place.

    Every adapter weight must be found (a silent partial load would resume a different model).
    """
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    result = set_peft_model_state_dict(model, load_peft_weights(str(directory), device="cpu"))
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trained & set(result.missing_keys))
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{directory}: the adapter does not fit this model (missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]})"
        )


def merged_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A plain transformers model whose weights are the base plus the merged adapter;
    ``model`` itself is left as it is (a copy is merged). Other models are returned unchanged."""
    if not is_lora(model):
        return model
    return copy.deepcopy(model).merge_and_unload()


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

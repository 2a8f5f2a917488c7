"""Load a causal LM and its tokenizer from an alias, a hub id, a local directory or a GGUF file.

GGUF files are dequantised by transformers (``gguf_file=``), which takes tens of seconds on a
CPU; the result is cached once as safetensors + tokenizer files under the cache directory
(``$RL_REASON_CACHE``, default ``~/.cache/rl_reason``) so that later loads are plain local loads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rl_reason.model_names import MODEL_ALIASES, resolve_alias

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    """Root of rl-reason's model cache: ``$RL_REASON_CACHE`` or ``~/.cache/rl_reason``."""
    return Path(os.environ.get("RL_REASON_CACHE") or Path.home() / ".cache" / "rl_reason")


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)} or a torch.dtype")
    return _DTYPES[dtype]


def gguf_cache_path(gguf_path: Path) -> Path:
    """Cache folder of a GGUF file's dequantised copy, keyed by its absolute path, size and mtime."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{gguf_path.stem}-{key}"


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise ``gguf_path`` into ``target`` (safetensors + tokenizer), atomically.

    The copy is written to a unique temporary sibling and renamed into place, so a crash leaves no
    half-written cache and two processes converting at once both end with one complete folder.
    """
    logger.info("dequantising %s into %s (once; later loads use the cache)", gguf_path, target)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if not tokenizer.chat_template:  # base models ship none; chat-style prompt templates will refuse it
        logger.warning("%s: the GGUF metadata carries no chat template", gguf_path)
    # The weights are plain dequantised tensors; transformers only keeps a GGUF marker that
    # refuses serialisation. Dropping it saves an ordinary float32 checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():  # not a lost race with another process: a real failure
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_model_source(name_or_path: str | os.PathLike) -> str:
    """What ``from_pretrained`` (or vLLM) should load: a local folder, or the hub id unchanged.

    Aliases resolve to their packaged file; a ``.gguf`` file resolves to its dequantised cache
    folder, which is created on first use.
    """
    name = str(name_or_path)
    path = resolve_alias(name) if name in MODEL_ALIASES else Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        cached = gguf_cache_path(path)
        if not cached.is_dir():
            _convert_gguf(path, cached)
        return str(cached)
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ValueError(f"{path} is neither a model directory nor a .gguf file")
    return name  # a hub id: from_pretrained downloads or reads the hub cache


def load_model(
    name_or_path: str | os.PathLike,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
    load_in_4bit: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` from an alias, a ``.gguf`` file, a local directory or a hub id.

    The model is returned in eval mode on ``device``. The tokenizer always has a pad token (the
    EOS token when the model defines none), since batched rollouts and log-probs pad.
    ``load_in_4bit``: NF4 weights through bitsandbytes (QLoRA's frozen base; CUDA only), computing
    in ``dtype``.
    """
    torch_dtype = parse_dtype(dtype)
    source = resolve_model_source(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    quantized = {}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        quantized = {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                                bnb_4bit_compute_dtype=torch_dtype),
                     "device_map": {"": str(device)}}  # quantised weights cannot be moved with .to() afterwards
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, trust_remote_code=trust_remote_code,
                                                 **quantized)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return (model if load_in_4bit else model.to(device)).eval(), tokenizer


def base_policy(model_cfg, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model a ``ModelConfig`` names (``name``, ``dtype``, ``device``, ``load_in_4bit``), before
    any adapter; ``tiny:llama`` / ``tiny:qwen2`` are random test models initialised from ``seed``."""
    from rl_reason.models.tiny import tiny_model

    if model_cfg.name.startswith("tiny:"):
        model, tokenizer = tiny_model(arch=model_cfg.name.removeprefix("tiny:"), seed=seed)
        return model.to(device=model_cfg.device, dtype=parse_dtype(model_cfg.dtype)), tokenizer
    return load_model(model_cfg.name, dtype=model_cfg.dtype, device=model_cfg.device,
                      load_in_4bit=model_cfg.load_in_4bit)


def disable_dropout(model: torch.nn.Module) -> None:
    """Zero every dropout of a transformers model, so training mode computes what eval mode does.

    RL needs old and new log-probs from one deterministic function; transformers only applies
    activation checkpointing in training mode, so a checkpointed policy trains in training mode
    with its dropout switched off (``nn.Dropout`` modules and the attention modules'
    ``attention_dropout`` attribute, which Llama/Qwen2-style attention reads at call time).
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0

"""``rl-reason export RUN --out DIR [--merge]``: a run's trained model as a folder other tools load.

A LoRA run's checkpoints hold the adapter alone. With ``--merge`` the adapter is added into the
base weights the run started from (its ``config.yaml`` names them), giving a plain Hugging Face
folder (weights + tokenizer) that transformers, vLLM and ``rl-reason eval`` load; without it the
adapter folder is written as saved (peft ``PeftModel.from_pretrained`` loads it onto the base).
A full fine-tuning run's checkpoint is a plain folder already and is written as it is.
The newest checkpoint is exported unless ``--checkpoint`` names another.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rl_reason.cli import checks
from rl_reason.cli.checks import UserError


def _checkpoint(run: Path, choice: str | None) -> Path:
    """The checkpoint folder to export: ``choice`` (a step number or a folder) or the newest."""
    steps = sorted((run / "checkpoints").glob("step_*")) if (run / "checkpoints").is_dir() else []
    if choice is None:
        if not steps:
            raise UserError(f"RUN {run}: no checkpoints/step_* folder; train first (or pass --checkpoint)")
        return steps[-1]
    path = run / "checkpoints" / f"step_{int(choice):06d}" if choice.isdigit() else Path(choice).expanduser()
    if not (path / "model").is_dir():
        raise UserError(
            f"--checkpoint {choice}: {path} holds no model/ folder (available: "
            f"{', '.join(p.name for p in steps) or 'none'})"
        )
    return path


def _run_config(run: Path):
    from rl_reason.cli.train import load_train_config

    saved = run / "config.yaml"
    if not saved.is_file():
        raise UserError(f"RUN {run}: no config.yaml, so this is not a run folder of rl-reason train")
    return load_train_config(str(saved), [])


def merge_adapter(trainer: str, cfg, adapter_dir: Path, device: str = "cpu"):
    """The run's base model (``cfg.model``, full precision) with the adapter in ``adapter_dir``
    merged into its weights: a plain transformers model."""
    import dataclasses

    from peft import PeftModel

    from rl_reason.models import base_policy
    from rl_reason.models.heads import load_scalar_model

    model_cfg = dataclasses.replace(cfg.model, device=device, load_in_4bit=False)
    if trainer == "reward_model":
        base, _ = load_scalar_model(model_cfg.name, dtype=model_cfg.dtype, device=device)
    else:
        base, _ = base_policy(model_cfg, cfg.seed)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def handle(args: argparse.Namespace) -> int:
    run = Path(args.run).expanduser()
    if not run.is_dir():
        raise UserError(f"RUN {args.run}: no such folder")
    out = checks.output_dir(args.out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {args.out} already holds files; export into a new or empty folder")
    trainer, cfg = _run_config(run)
    model_dir = _checkpoint(run, args.checkpoint) / "model"

    from rl_reason.io import atomic_dir
    from rl_reason.models.lora import is_adapter_dir

    lora = is_adapter_dir(model_dir)
    if not lora and args.merge:
        print(f"{model_dir} is a full fine-tune (no adapter): nothing to merge, written as it is", file=sys.stderr)
    with atomic_dir(out) as tmp:
        if lora and args.merge:
            from transformers import AutoTokenizer

            with checks.loading(f"the base model of {run} ({cfg.model.name})"):
                merged = merge_adapter(trainer, cfg, model_dir, args.device)
            merged.save_pretrained(tmp, safe_serialization=True)
            AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
        else:
            shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
    kind = "merged model" if lora and args.merge else ("LoRA adapter" if lora else "model")
    print(f"wrote the {kind} of {model_dir.parent} to {out}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a run's trained model (LoRA merged or as an adapter) as a folder",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run folder of rl-reason train (holds config.yaml and checkpoints/)")
    p.add_argument("--out", required=True, help="folder to write (new or empty)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="LoRA runs: merge the adapter into the base weights and write a plain Hugging Face model "
        "(default: write the adapter folder)",
    )
    p.add_argument("--checkpoint", help="a step number or checkpoint folder to export (default: the newest checkpoint)")
    p.add_argument("--device", default="cpu", help="torch device to load the base on for --merge (default cpu)")
    p.set_defaults(func=handle)

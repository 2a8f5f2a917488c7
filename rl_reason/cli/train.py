"""``rl-reason train --config recipes/X.yaml [key=value ...]``: run a training job.

The config's ``trainer:`` key picks the trainer (``rl_reason.trainers.TRAINERS``); overrides use
dotted keys (``train.lr=1e-5``). Torch is imported only once a job starts, so ``--help`` and
``--validate`` are fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from rl_reason.cli import checks


def _resolve(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _trainer_name(config_path: str, overrides: list[str]) -> str:
    import yaml

    from rl_reason.config import ConfigError, parse_overrides

    name = parse_overrides([o for o in overrides if o.startswith("trainer=")]).get("trainer")
    if name is None:
        try:
            data = yaml.safe_load(Path(config_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{config_path}: cannot read config ({e})") from None
        name = data.get("trainer", "grpo") if isinstance(data, dict) else "grpo"
    return str(name)


def load_train_config(config_path: str, overrides: list[str]):
    """The typed config of the trainer named by the file's ``trainer:`` key, validated."""
    from rl_reason.config import ConfigError, load_config
    from rl_reason.trainers import TRAINERS

    name = _trainer_name(config_path, overrides)
    if name not in TRAINERS:
        raise ConfigError(f"{config_path}: unknown trainer {name!r} (available: {', '.join(sorted(TRAINERS))})")
    return name, load_config(_resolve(TRAINERS[name][0]), config_path, overrides)


def _key_list(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def _help_epilog() -> str:
    from rl_reason.config import config_help
    from rl_reason.trainers import TRAINERS

    parts = ["config keys (set in the YAML file or as key=value overrides):"]
    for name, (config_spec, _) in TRAINERS.items():
        parts.append(f"\ntrainer: {name}")
        parts.extend(config_help(_resolve(config_spec)))
    return "\n".join(parts)


def _check_run_inputs(cfg) -> None:
    """The model, data sources and output folder a config names exist, before anything is created."""
    from rl_reason.config import to_dict
    from rl_reason.trainers.common.run_config import flatten
    from rl_reason.trainers.grpo_config import DataConfig

    flat = flatten(to_dict(cfg))
    name = flat.get("model.name", "")
    if name and not name.startswith("tiny:"):
        checks.model_name(name, "model.name")
    # Keys read by data_pipelines.load_dataset (dataset names or JSONL) vs pair/chat data (JSONL or hub id).
    dataset_keys = {"pairs.data", "rejection_sampling.data", "task_eval.data"}
    if isinstance(getattr(cfg, "data", None), DataConfig):
        dataset_keys |= {"data.train", "data.eval"}
    for key in sorted(dataset_keys | {"data.train", "data.eval"}):
        value = flat.get(key)
        if not isinstance(value, str) or not value:
            continue
        if key in dataset_keys:
            checks.dataset(value, key)
            if value.endswith(".jsonl") or os.sep in value:  # a local file: every row must convert
                checks.load_examples(value, key)
        elif value.endswith((".jsonl", ".json")) or value.startswith((".", os.sep)) or Path(value).exists():
            checks.input_file(value, key)
    reward_model = flat.get("reward_model.path")
    if reward_model:
        from rl_reason.model_names import is_scalar_model_dir

        if not is_scalar_model_dir(Path(reward_model)):
            raise checks.UserError(f"reward_model.path {reward_model} is not a trained reward model folder "
                                   "(train one first: rl-reason train --config recipes/rm.yaml)")
    checks.output_dir(cfg.output_dir, "output_dir")


def handle(args: argparse.Namespace) -> int:
    from rl_reason.config import to_dict
    from rl_reason.trainers import TRAINERS
    from rl_reason.trainers.common.run_config import check_resume_config

    if args.probe and not args.validate:
        raise checks.UserError("--probe goes with --validate (it samples, then exits without training)")
    name, cfg = load_train_config(args.config, args.overrides)
    _check_run_inputs(cfg)
    for key, (old, new) in check_resume_config(to_dict(cfg), args.allow_config_change).items():
        print(f"note: continuing {cfg.output_dir} with {key} changed: {old!r} -> {new!r}", file=sys.stderr)
    if args.validate:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        if args.probe:
            if name != "grpo":
                raise checks.UserError(f"--probe measures group reward variance, which only the grpo trainer uses (got {name})")
            from rl_reason.trainers.grpo import probe

            print("\n".join(probe(cfg, args.probe)))
        return 0
    run_dir = _resolve(TRAINERS[name][1])(cfg)
    from rl_reason.distributed.setup import finish_distributed, is_main

    finish_distributed()

    if is_main():  # one closing line per run, not one per data-parallel rank
        print(f"done: metrics in {run_dir}/metrics.jsonl; plot them with `rl-reason report {run_dir}`")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (GRPO/DAPO, PPO, reward model, DPO family, SFT) from a YAML recipe",
        description="Train a model from a YAML recipe, with key=value overrides. Writes metrics.jsonl, "
        "TensorBoard logs and checkpoints to output_dir; with resume=auto (default) a rerun continues "
        "from the newest checkpoint. Trainers: grpo, ppo, reward_model, dpo (dpo/cDPO/ipo/simpo/orpo; Step-DPO is "
        "dpo on the first-wrong-step pairs of `rl-reason pairs --step-level`), kto (unpaired prompt/completion/label "
        "rows, e.g. `rl-reason pairs --unpaired`, or the policy's own verified samples), sft.",
        epilog=_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="YAML recipe, e.g. recipes/quickstart.yaml")
    parser.add_argument("--validate", action="store_true",
                        help="only check the config, its model, data files and output_dir, print it resolved, and exit")
    parser.add_argument("--allow-config-change", type=_key_list, default=[], metavar="KEY[,KEY]",
                        help="continue an existing run although these dotted keys (or whole sections) changed, "
                        "e.g. train.steps; any other change is refused")
    parser.add_argument("--probe", type=checks.non_negative_int, default=0, metavar="N",
                        help="with --validate: sample N training prompts with the recipe's settings, score them, and "
                        "print the expected learning-signal rate and its likely causes (loads the model)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=1e-5 rollout.n=4")
    parser.set_defaults(func=handle)

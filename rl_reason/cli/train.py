"""``rl-reason train --config recipes/X.yaml [key=value ...]``: run a training job.

The config's ``trainer:`` key picks the trainer (``rl_reason.trainers.TRAINERS``); overrides use
dotted keys (``train.lr=1e-5``). Torch is imported only once a job starts, so ``--help`` and
``--validate`` are fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


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


def _help_epilog() -> str:
    from rl_reason.config import config_help
    from rl_reason.trainers import TRAINERS

    parts = ["config keys (set in the YAML file or as key=value overrides):"]
    for name, (config_spec, _) in TRAINERS.items():
        parts.append(f"\ntrainer: {name}")
        parts.extend(config_help(_resolve(config_spec)))
    return "\n".join(parts)


def handle(args: argparse.Namespace) -> int:
    from rl_reason.config import ConfigError, to_dict
    from rl_reason.trainers import TRAINERS

    try:
        name, cfg = load_train_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.probe and not args.validate:
        print("error: --probe goes with --validate (it samples, then exits without training)", file=sys.stderr)
        return 2
    if args.validate:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        if args.probe:
            if name != "grpo":
                print(f"error: --probe measures group reward variance, which only the grpo trainer uses (got {name})",
                      file=sys.stderr)
                return 2
            from rl_reason.trainers.grpo import probe

            print("\n".join(probe(cfg, args.probe)))
        return 0
    run_dir = _resolve(TRAINERS[name][1])(cfg)
    from rl_reason.distributed.setup import is_main

    if is_main():  # one closing line per run, not one per data-parallel rank
        print(f"done: metrics in {run_dir}/metrics.jsonl; plot them with `rl-reason report {run_dir}`")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (GRPO/DAPO, PPO, reward model, DPO family, SFT) from a YAML recipe",
        description="Train a model from a YAML recipe, with key=value overrides. Writes metrics.jsonl, "
        "TensorBoard logs and checkpoints to output_dir; with resume=auto (default) a rerun continues "
        "from the newest checkpoint.",
        epilog=_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="YAML recipe, e.g. recipes/quickstart.yaml")
    parser.add_argument("--validate", action="store_true", help="only load and check the config, print it resolved, and exit")
    parser.add_argument("--probe", type=int, default=0, metavar="N",
                        help="with --validate: sample N training prompts with the recipe's settings, score them, and "
                        "print the expected learning-signal rate and its likely causes (loads the model)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=1e-5 rollout.n=4")
    parser.set_defaults(func=handle)

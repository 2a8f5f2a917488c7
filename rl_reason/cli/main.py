from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules in rl_reason.cli, in the order --help lists them.
COMMAND_MODULES: list[str] = ["data", "eval"]


def build_parser() -> argparse.ArgumentParser:
    from rl_reason import __version__

    parser = argparse.ArgumentParser(
        prog="rl-reason",
        description="Train reasoning LLMs with reinforcement learning from verifiable rewards, "
        "verify answers and code, and evaluate models.",
    )
    parser.add_argument("--version", action="version", version=f"rl-reason {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"rl_reason.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

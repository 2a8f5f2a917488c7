from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
import warnings

from rl_reason.cli.checks import ArgumentParser, UserError

# The order --help lists sub-commands in; any other module in rl_reason.cli that has a
# ``register(subparsers)`` function is added after these, so a new command needs no edit here.
COMMAND_ORDER = ["train", "export", "eval", "grade", "verify", "data", "pairs", "score", "sandbox", "report"]


def _command_modules() -> list[str]:
    import pkgutil

    import rl_reason.cli as package

    found = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in ("main", "__main__")]
    return sorted(found, key=lambda name: (COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER), name))


def build_parser() -> ArgumentParser:
    from rl_reason import __version__

    parser = ArgumentParser(
        prog="rl-reason",
        description="Train reasoning LLMs with reinforcement learning from verifiable rewards, "
        "verify answers and code, and evaluate models.",
    )
    parser.add_argument("--version", action="version", version=f"rl-reason {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        module = importlib.import_module(f"rl_reason.cli.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


class _DropMessages(logging.Filter):
    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def silence_known_noise() -> None:
    """Hide warnings every model run prints that say nothing actionable to the user: transformers'
    deprecation of the ``past_key_values`` argument its own generate() passes, and DeepSpeed's
    note that a CPU-only host uses the CPU."""
    warnings.filterwarnings("ignore", message=r".*`past_key_values` is deprecated", category=FutureWarning)
    logger = logging.getLogger("DeepSpeed")
    if not any(isinstance(f, _DropMessages) for f in logger.filters):
        logger.addFilter(_DropMessages("Setting accelerator to CPU"))


def main(argv: list[str] | None = None) -> int:
    silence_known_noise()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from rl_reason.config import ConfigError
    from rl_reason.io import JsonlError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`rl-reason data list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit flush
        return 0
    except (UserError, ConfigError, JsonlError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001  (a bug, not a user mistake: show where, and ask for a report)
        traceback.print_exc()
        print(f"rl-reason {args.command}: unexpected error (a bug); please report it with the traceback above",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

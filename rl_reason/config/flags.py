"""Command-line flags generated from a typed config dataclass, so a command and a recipe share
one default and one help text per knob (``--max-new-tokens`` is ``max_new_tokens``)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin

from rl_reason.config.loader import _hints, check_bounds

T = TypeVar("T")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Sequence[str] = (),
    types: dict[str, Callable[[str], Any]] | None = None,
    required: Sequence[str] = (),
    help: dict[str, str] | None = None,
) -> None:
    """One flag per scalar field of ``cls`` not in ``skip``, with the field's default and help;
    ``types`` maps a field to a stricter argparse type (e.g. a positive-int check), ``help``
    replaces a field's help where the command means something more specific by it."""
    types, help = types or {}, help or {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        text = help.get(f.name, f.metadata.get("help", "")).replace("%", "%%")  # argparse formats help with %
        kwargs: dict[str, Any] = {"dest": f.name}
        if f.name in required:
            kwargs.update(required=True, help=text)
        else:
            kwargs.update(default=f.default, help=f"{text} (default: %(default)s)")
        if get_origin(tp) is Literal:
            kwargs["choices"] = get_args(tp)
        elif tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = types.get(f.name, tp)
        parser.add_argument(_flag(f.name), **kwargs)


def config_from_flags(cls: type[T], args: argparse.Namespace, skip: Sequence[str] = (), **given: Any) -> T:
    """``cls`` built from the flags ``add_config_flags`` added (and ``given`` for skipped fields);
    its bounds (named by flag) and its own checks (``__post_init__``) run and raise ``ConfigError``."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in skip}
    check_bounds(cls, values, _flag)
    return cls(**values, **given)

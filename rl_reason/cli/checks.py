"""What every command checks before it does any work: user mistakes become one line and exit 2.

``UserError`` is a mistake in what the user gave (a path, a value, a file's content); ``main``
prints it as one ``error:`` line and exits 2, and only a real bug shows a traceback. Numeric flags
use the argparse types here, so the message names the flag; paths and model names are checked
before any output folder is created, so a typo leaves nothing half-made behind.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class UserError(Exception):
    """A mistake in the command's input; printed as ``error: <message>`` with exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``rl-reason eval: error: argument --n: ... (see --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = what
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a number > 0")
non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v <= 1, "a number between 0 and 1")


def input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a readable, non-empty file; ``what`` names it in the message (e.g. '--input')."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} {path}: no such file")
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {path} is not readable")
    with open(p, "rb") as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return p
    raise UserError(f"{what} {path} is empty")


def _writable_folder(folder: Path, what: str, path: str | os.PathLike) -> None:
    """``folder`` is, or can be created as, a folder this process may write into."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: {existing} is not writable")


def output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` as an output folder that exists or can be created; creates nothing."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder")
    _writable_folder(p, what, path)
    return p


def output_file(path: str | os.PathLike, what: str, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """``path`` as an output file that can be written and is none of ``inputs``; creates nothing."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file")
    for source in inputs:
        if p.resolve() == Path(source).expanduser().resolve():
            raise UserError(f"{what} {path} is also the input file; write the results to another path")
    _writable_folder(p.parent, what, path)
    return p


def model_name(name: str, what: str = "--model") -> str:
    """``name`` if it names a loadable model (see ``rl_reason.model_names``); checked offline-fast."""
    from rl_reason.model_names import check_model_name

    try:
        check_model_name(name)
    except ValueError as e:
        raise UserError(f"{what}: {e}") from None
    return name


def dataset(name: str, what: str) -> None:
    """``name`` is a registered dataset name[:split] or an existing, non-empty JSONL file
    (the two forms ``data_pipelines.load_dataset`` accepts)."""
    from rl_reason.data_pipelines.registry import DATASET_NAMES

    if name.endswith(".jsonl") or os.sep in name:
        input_file(name, what)
        return
    base = name.partition(":")[0]
    if base in DATASET_NAMES:
        return
    import difflib

    close = difflib.get_close_matches(base, DATASET_NAMES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(f"{what}: unknown dataset {name!r}; {hint}choose from {', '.join(DATASET_NAMES)} or give a .jsonl path")


def load_examples(name: str, what: str, **kwargs) -> list:
    """``data_pipelines.load_dataset(name, **kwargs)`` with its user-facing errors (unknown name,
    missing file, bad field mapping, wrong split) as ``UserError``s naming the flag."""
    from rl_reason.data_pipelines import load_dataset

    try:
        return load_dataset(name, **kwargs)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(f"{what} {name}: {e}") from None


@contextlib.contextmanager
def loading(what: str) -> Iterator[None]:
    """Turn the failure to load a model that passed ``model_name`` (a folder with a broken or
    missing file) into one ``UserError`` line naming ``what``."""
    try:
        yield
    except (OSError, ValueError) as e:
        lines = str(e).strip().splitlines()
        raise UserError(f"{what}: cannot load it ({lines[0] if lines else type(e).__name__})") from None

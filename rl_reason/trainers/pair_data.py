"""Preference data in TRL's formats, from a local JSONL file or a hub id: pairs
(``prompt``/``chosen``/``rejected``) and unpaired labelled responses (``prompt``/``completion``/
``label``, KTO's format).

Rows are validated on load (an error names the file, line and key) and split into train and
held-out rows deterministically.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from rl_reason.data_pipelines.step_labels import source_rows

PAIR_KEYS = ("prompt", "chosen", "rejected")
UNPAIRED_KEYS = ("prompt", "completion", "label")
UNPAIRED_TYPES = {"label": bool}


def load_rows(source: str, required: tuple[str, ...], limit: int = 0,
              types: dict[str, type] | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL file, or of a hub dataset ``id[:split]`` (split defaults to train), each
    holding every ``required`` key."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for where, row in source_rows(source):
        rows.append((where, row))
        if limit and len(rows) >= limit:
            break
    for where, row in rows:
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{where}: row has no {', '.join(map(repr, missing))} (needs {', '.join(required)})")
        for key, tp in (types or {}).items():  # and each key of ``types`` a value of that type
            if not isinstance(row[key], tp):
                raise ValueError(f"{where}: key {key!r} must be a {tp.__name__}, got {type(row[key]).__name__} {row[key]!r}")
    return [row for _, row in rows]


def train_eval_rows(rows: list[dict[str, Any]], data, seed: int,
                    load_eval: Callable[[str], list[dict[str, Any]]]) -> tuple[list, list]:
    """Training and held-out rows of a ``data`` section (``RowDataConfig`` or ``StepDataConfig``):
    ``rows`` and ``load_eval(data.eval)`` when ``data.eval`` is set, else ``split_rows`` of ``rows``."""
    if data.eval:
        return rows, load_eval(data.eval)
    return split_rows(rows, data.eval_fraction, seed)


def split_rows(rows: list[dict[str, Any]], eval_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic shuffle-split; pairs of the same prompt stay on one side, so the held-out
    accuracy measures prompts the model never trained on."""
    prompts = sorted({str(r["prompt"]) for r in rows})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: int(round(eval_fraction * len(prompts)))])
    return [r for r in rows if str(r["prompt"]) not in held], [r for r in rows if str(r["prompt"]) in held]


def mismatched_indices(prompts: list[str], order: list[int]) -> list[int]:
    """For each row, the row whose completion it is paired with to estimate KTO's reference
    point: walking ``order`` (a permutation of the rows), the nearest earlier row, cyclically,
    whose prompt differs (TRL pairs each row with its predecessor in the batch; skipping equal
    prompts keeps the estimate off the matched responses when one prompt has several rows)."""
    if sorted(order) != list(range(len(prompts))):
        raise ValueError("order must be a permutation of the row indices")
    if len(set(prompts)) < 2:
        raise ValueError("KTO's reference point needs rows of at least two different prompts")
    out = [0] * len(prompts)
    for pos, i in enumerate(order):
        back = 1
        while prompts[order[pos - back]] == prompts[i]:
            back += 1
        out[i] = order[pos - back]
    return out

"""Preference pairs in TRL's ``prompt``/``chosen``/``rejected`` format: local JSONL or hub id.

Rows are validated on load (an error names the file, line and key) and split into train and
held-out pairs deterministically.
"""

from __future__ import annotations

import random
from typing import Any

from rl_reason.data_pipelines.step_labels import source_rows

PAIR_KEYS = ("prompt", "chosen", "rejected")


def load_rows(source: str, required: tuple[str, ...], limit: int = 0) -> list[dict[str, Any]]:
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
    return [row for _, row in rows]


def split_rows(rows: list[dict[str, Any]], eval_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic shuffle-split; pairs of the same prompt stay on one side, so the held-out
    accuracy measures prompts the model never trained on."""
    prompts = sorted({str(r["prompt"]) for r in rows})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: int(round(eval_fraction * len(prompts)))])
    return [r for r in rows if str(r["prompt"]) not in held], [r for r in rows if str(r["prompt"]) in held]

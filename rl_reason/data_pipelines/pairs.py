"""Verifier-filtered DPO pairs from scored samples (TRL's ``prompt``/``chosen``/``rejected`` rows)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def build_dpo_pairs(
    samples: Iterable[Mapping[str, Any]], prompts: Mapping[str, str], max_pairs_per_prompt: int | None = None
) -> list[dict[str, Any]]:
    """Pair correct with incorrect responses to the same prompt.

    ``samples`` are graded records with ``id``, ``sample`` (index), ``text`` and ``correct``
    (the eval harness's ``samples.jsonl`` rows); ``prompts`` maps id to the prompt text the
    pairs should carry. Pairing is deterministic: per prompt, the i-th correct and the i-th
    incorrect response in sample order form pair i (duplicate texts counted once), up to
    ``max_pairs_per_prompt``. Prompts with no correct or no incorrect response give no pair.
    Output rows are ordered by prompt id then pair index.
    """
    by_id: dict[str, dict[bool, list[tuple[int, str]]]] = defaultdict(lambda: {True: [], False: []})
    for rec in samples:
        pid = str(rec["id"])
        if pid not in prompts:
            raise KeyError(f"sample of {pid!r} has no prompt")
        by_id[pid][bool(rec["correct"])].append((int(rec["sample"]), rec["text"]))
    rows = []
    for pid in sorted(by_id):
        chosen = _unique_texts(by_id[pid][True])
        rejected = _unique_texts(by_id[pid][False])
        count = min(len(chosen), len(rejected))
        if max_pairs_per_prompt is not None:
            count = min(count, max_pairs_per_prompt)
        for i in range(count):
            rows.append({"id": pid, "prompt": prompts[pid], "chosen": chosen[i], "rejected": rejected[i]})
    return rows


def _unique_texts(indexed: list[tuple[int, str]]) -> list[str]:
    seen: set[str] = set()
    out = []
    for _, text in sorted(indexed):
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out

"""Preference data from verifier-scored samples: DPO pairs (TRL's ``prompt``/``chosen``/``rejected``
rows) and KTO's unpaired rows (``prompt``/``completion``/``label``)."""

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
    by_id = _group(samples, prompts)
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


def build_unpaired_rows(samples: Iterable[Mapping[str, Any]], prompts: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every distinct graded response as one KTO row, labelled by the verifier: desirable
    (``label`` true) when correct. Unlike pairs, prompts whose answers are all correct or all
    wrong contribute too. Same inputs as ``build_dpo_pairs``; rows are ordered by prompt id,
    then the correct responses, then the incorrect ones, each in sample order."""
    by_id = _group(samples, prompts)
    return [{"id": pid, "prompt": prompts[pid], "completion": text, "label": label}
            for pid in sorted(by_id) for label in (True, False) for text in _unique_texts(by_id[pid][label])]


def _group(samples: Iterable[Mapping[str, Any]], prompts: Mapping[str, str]) -> dict[str, dict[bool, list[tuple[int, str]]]]:
    """Per prompt id, the (sample index, text) of its correct and of its incorrect responses."""
    by_id: dict[str, dict[bool, list[tuple[int, str]]]] = defaultdict(lambda: {True: [], False: []})
    for rec in samples:
        pid = str(rec["id"])
        if pid not in prompts:
            raise KeyError(f"sample of {pid!r} has no prompt")
        by_id[pid][bool(rec["correct"])].append((int(rec["sample"]), rec["text"]))
    return by_id


def _unique_texts(indexed: list[tuple[int, str]]) -> list[str]:
    seen: set[str] = set()
    out = []
    for _, text in sorted(indexed):
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out

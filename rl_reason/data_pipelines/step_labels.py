"""Step-labelled solutions for process reward models, in one row format (no torch)::

    {"prompt": "What is 2 + 3 * 4?", "completions": ["3 * 4 = 12", "2 + 12 = 14"], "labels": [true, true]}

(TRL's stepwise format, as in ``trl-lib/math_shepherd`` and ``trl-lib/prm800k``: one label per
step, true = the step is correct / still on a path to the right answer). Readers:

- ``stepwise``: rows already in that format (optional ``id``, ``values``: Monte-Carlo success rates);
- ``math_shepherd``: the raw Math-Shepherd release (``peiyi9979/Math-Shepherd``): ``input`` is the
  question followed by steps each ending in the tag ``ки``, ``label`` the same text with each tag
  replaced by ``+`` (good) or ``-`` (bad); the question ends where ``Step 1:`` begins;
- ``prm800k``: OpenAI's PRM800K phase files: ``question.problem`` and ``label.steps[]``, each with
  rated ``completions[]`` (rating 1 good, 0 neutral, -1 bad), the ``chosen_completion`` index that
  continues the solution or a ``human_completion``. As TRL's conversion does, every rated
  alternative that was not chosen ends a solution of its own (prefix + it), and the chosen path
  is one more; only rating 1 counts as good.

Monte-Carlo labels from the policy's own rollouts (``rl-reason prm-label``) use ``split_steps``
and ``mc_labels``. A bad row is an error naming the file, line and key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rl_reason.io import JsonlError, read_jsonl

STEP_FORMATS = ("auto", "stepwise", "math_shepherd", "prm800k")
SHEPHERD_TAG = "ки"


class StepRowError(ValueError):
    """A row that cannot be read as step-labelled data; the message names where and which key."""


def split_steps(text: str, separator: str = "\n") -> list[str]:
    """A solution's steps: the text cut at ``separator``, each stripped, empty ones dropped."""
    return [s.strip() for s in text.split(separator) if s.strip()]


def mc_labels(successes: list[int], k: int) -> tuple[list[bool], list[float]]:
    """Monte-Carlo step labels from ``successes[i]`` verified-correct continuations out of ``k``
    sampled after step i: the hard label (any success: the prefix can still reach the answer, as
    Math-Shepherd's hard estimation) and the soft value (success share)."""
    if k <= 0 or any(not 0 <= s <= k for s in successes):
        raise ValueError(f"successes must lie in 0..k={k}, got {successes}")
    return [s > 0 for s in successes], [s / k for s in successes]


def _need(row: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in row:
        raise StepRowError(f"{where}: row has no {key!r}")
    if not isinstance(row[key], kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise StepRowError(f"{where}: {key!r} must be a {name}, got {type(row[key]).__name__}")
    return row[key]


def from_stepwise(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    prompt = _need(row, "prompt", str, where)
    steps = _need(row, "completions", list, where)
    labels = _need(row, "labels", list, where)
    if not steps or len(steps) != len(labels):
        raise StepRowError(f"{where}: 'completions' ({len(steps)} steps) and 'labels' ({len(labels)}) must be "
                           "non-empty and of equal length")
    if not all(isinstance(s, str) for s in steps):
        raise StepRowError(f"{where}: every entry of 'completions' must be a string (one step)")
    if not all(isinstance(v, bool) or v in (0, 1) for v in labels):
        raise StepRowError(f"{where}: every entry of 'labels' must be true/false (or 1/0), got {labels}")
    out = {"prompt": prompt, "completions": steps, "labels": [bool(v) for v in labels]}
    for key in ("id", "values"):
        if key in row:
            out[key] = row[key]
    return [out]


def from_math_shepherd(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    text = _need(row, "input", str, where)
    labelled = _need(row, "label", str, where)
    # One character per tag, so positions in `input` line up with the +/- in `label`.
    marked = text.replace(SHEPHERD_TAG, "\0")
    if len(marked) != len(labelled):
        raise StepRowError(f"{where}: 'label' ({len(labelled)} chars) is not 'input' with each {SHEPHERD_TAG!r} "
                           f"replaced by one '+' or '-' ({len(marked)} chars expected)")
    ends = [i for i, ch in enumerate(marked) if ch == "\0"]
    if not ends:
        raise StepRowError(f"{where}: 'input' has no step tag {SHEPHERD_TAG!r}")
    bad = [labelled[i] for i in ends if labelled[i] not in "+-"]
    if bad:
        raise StepRowError(f"{where}: 'label' has {bad[0]!r} where 'input' has a step tag (expected '+' or '-')")
    starts = [0] + [i + 1 for i in ends[:-1]]
    pieces = [marked[a:b] for a, b in zip(starts, ends)]
    head = pieces[0]
    cut = next((head.find(m) for m in ("Step 1:", "step 1:") if m in head), -1)
    if cut < 0:
        raise StepRowError(f"{where}: cannot find where the question ends in 'input' (no 'Step 1:')")
    steps = [head[cut:].strip()] + [p.strip() for p in pieces[1:]]
    return [{"prompt": head[:cut].strip(), "completions": steps, "labels": [labelled[i] == "+" for i in ends]}]


def _completion_text(completion: Any, where: str) -> str:
    if isinstance(completion, dict) and isinstance(completion.get("text"), str):
        return completion["text"]
    if isinstance(completion, str):
        return completion
    raise StepRowError(f"{where}: a completion must have a string 'text'")


def from_prm800k(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    question = _need(row, "question", dict, where)
    problem = _need(question, "problem", str, f"{where}: 'question'")
    label = _need(row, "label", dict, where)
    steps = _need(label, "steps", list, f"{where}: 'label'")
    out: list[dict[str, Any]] = []
    prefix: list[str] = []
    prefix_labels: list[bool] = []
    for s, step in enumerate(steps):
        at = f"{where}: label.steps[{s}]"
        if not isinstance(step, dict):
            raise StepRowError(f"{at} must be an object")
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        if not isinstance(completions, list):
            raise StepRowError(f"{at}.completions must be a list")
        for c, completion in enumerate(completions):
            if c == chosen:
                continue
            if not isinstance(completion, dict) or "rating" not in completion:
                raise StepRowError(f"{at}.completions[{c}] has no 'rating'")
            out.append({"prompt": problem, "completions": prefix + [_completion_text(completion, f"{at}.completions[{c}]")],
                        "labels": prefix_labels + [completion["rating"] == 1]})
        if chosen is not None:
            if not isinstance(chosen, int) or not 0 <= chosen < len(completions):
                raise StepRowError(f"{at}.chosen_completion={chosen!r} is not an index of its {len(completions)} completions")
            prefix.append(_completion_text(completions[chosen], f"{at}.completions[{chosen}]"))
            prefix_labels.append(completions[chosen].get("rating") == 1)
        elif human is not None:
            prefix.append(_completion_text(human, f"{at}.human_completion"))
            prefix_labels.append(True)
        else:
            break
    if prefix:
        out.append({"prompt": problem, "completions": prefix, "labels": prefix_labels})
    return out


READERS = {"stepwise": from_stepwise, "math_shepherd": from_math_shepherd, "prm800k": from_prm800k}


def detect_format(row: dict[str, Any], where: str) -> str:
    """The reader a row's keys call for."""
    if "completions" in row and "labels" in row:
        return "stepwise"
    if "input" in row and "label" in row:
        return "math_shepherd"
    if "question" in row and "label" in row:
        return "prm800k"
    raise StepRowError(f"{where}: cannot tell the format from the keys {sorted(row)}: expected prompt/completions/labels "
                       "(stepwise), input/label (math_shepherd) or question/label (prm800k)")


def source_rows(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` of a JSONL file, or of a hub dataset ``id[:split]`` (split defaults to train);
    ``where`` names the file and line (or the hub row) for error messages."""
    path = Path(source).expanduser()
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no such file")
        for line_no, row in read_jsonl(path):
            if isinstance(row, JsonlError):
                raise row
            yield f"{path}:{line_no}", row
        return
    import datasets  # a hub dataset id[:split], e.g. trl-lib/math_shepherd:test

    name, _, split = source.partition(":")
    for i, row in enumerate(datasets.load_dataset(name, split=split or "train")):
        yield f"{source} row {i}", dict(row)


def load_step_rows(source: str, fmt: str = "auto", limit: int = 0) -> list[dict[str, Any]]:
    """Step-labelled rows of a JSONL file or hub dataset ``id[:split]`` in the stepwise format,
    read with ``fmt`` (one of ``STEP_FORMATS``; ``auto`` picks from the first row's keys).
    ``limit`` caps the rows returned (0 = all); a PRM800K line may give several."""
    if fmt not in STEP_FORMATS:
        raise ValueError(f"unknown step-label format {fmt!r}; valid: {', '.join(STEP_FORMATS)}")
    rows: list[dict[str, Any]] = []
    reader = None
    for where, raw in source_rows(source):
        if reader is None:
            reader = READERS[detect_format(raw, where) if fmt == "auto" else fmt]
        rows += reader(raw, where)
        if limit and len(rows) >= limit:
            return rows[:limit]
    if not rows:
        raise StepRowError(f"{source}: no step-labelled rows")
    return rows

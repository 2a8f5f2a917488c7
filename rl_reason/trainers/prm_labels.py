"""Monte-Carlo step labels from the policy's own rollouts (Math-Shepherd's recipe, on our verifiers).

For each prompt, ``n`` solutions are sampled and graded (the eval harness: resumable
``OUT/samples.jsonl``) and cut into steps at the separator. For every step but the last, ``k``
continuations are sampled from the prompt plus the solution up to and including that step, and
graded; the step's label is whether any continuation reaches a verified answer, its value the
share that does. The last step's label is the solution's own grade. Rows go to
``OUT/steps.jsonl`` in the stepwise format (``data_pipelines.step_labels``) plus ``id``,
``sample`` and ``values``, ready for ``trainer: prm``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rl_reason.data_pipelines.step_labels import mc_labels, split_steps
from rl_reason.io import atomic_write_text

STEPS_FILE = "steps.jsonl"


def prefix_text(steps: list[str], upto: int, separator: str) -> str:
    """The response text of the first ``upto + 1`` steps, each ended by the separator (what the
    continuation is sampled after)."""
    return "".join(s + separator for s in steps[: upto + 1])


def mc_label(model, tokenizer, label, separator: str, out_dir: str | Path, seed: int = 0,
             progress: bool = True, batch_prompts: int = 32) -> list[dict[str, Any]]:
    """Step-labelled rows for ``label`` (an ``MCLabelConfig``), written to ``out_dir/steps.jsonl``."""
    from rl_reason.data_pipelines import load_dataset
    from rl_reason.eval.grader import Grader
    from rl_reason.rollout import SamplingParams, get_engine
    from rl_reason.trainers.minting import sample_and_grade

    out_dir = Path(out_dir)
    _, prompts, records = sample_and_grade(model, tokenizer, label.data, label.limit, label.n, label.template,
                                           label.temperature, label.max_new_tokens, out_dir, seed, progress)
    examples = {ex.id: ex for ex in load_dataset(label.data, limit=label.limit or None)}
    solutions = []
    for rec in sorted(records, key=lambda r: (str(r["id"]), int(r["sample"]))):
        steps = split_steps(rec["text"], separator)
        if label.max_steps:
            steps = steps[: label.max_steps]
        if steps:
            solutions.append((rec, steps))
    # (solution index, step index) of every prefix that needs continuations
    todo = [(s, i) for s, (_, steps) in enumerate(solutions) for i in range(len(steps) - 1)]
    successes: dict[tuple[int, int], int] = {}
    engine = get_engine("hf", model=model, tokenizer=tokenizer)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="prm-label continuations", unit="prefix", disable=not progress)
    with Grader() as grader:
        for start in range(0, len(todo), batch_prompts):
            chunk = todo[start : start + batch_prompts]
            texts = [prefix_text(solutions[s][1], i, separator) for s, i in chunk]
            params = SamplingParams(temperature=label.temperature, max_new_tokens=label.max_new_tokens,
                                    seed=seed + 1 + start // batch_prompts)
            groups = engine.generate([prompts[str(solutions[s][0]["id"])] + t for (s, _), t in zip(chunk, texts)],
                                     label.k, params)
            cont = [{"id": str(solutions[s][0]["id"]), "sample": j, "text": t + c.text}
                    for (s, _), t, group in zip(chunk, texts, groups) for j, c in enumerate(group)]
            graded = grader.grade(cont, examples)
            for q, key in enumerate(chunk):
                successes[key] = sum(bool(r["correct"]) for r in graded[q * label.k : (q + 1) * label.k])
            bar.update(len(chunk))
    bar.close()
    rows = []
    for s, (rec, steps) in enumerate(solutions):
        hits = [successes[(s, i)] for i in range(len(steps) - 1)] + [label.k if rec["correct"] else 0]
        labels, values = mc_labels(hits, label.k)
        rows.append({"id": str(rec["id"]), "sample": int(rec["sample"]), "prompt": examples[str(rec["id"])].prompt,
                     "completions": steps, "labels": labels, "values": values})
    atomic_write_text(out_dir / STEPS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rows

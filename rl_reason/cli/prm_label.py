"""``rl-reason prm-label --model M --data D --out DIR``: Monte-Carlo step labels for a process reward model.

Samples ``--n`` solutions per prompt, cuts each into steps at ``--separator``, samples ``--k``
continuations after every step and grades them with the verifiers: a step is good when any
continuation reaches a verified answer (its value: the share that do); the last step is labelled
by the solution's own grade. Writes ``DIR/samples.jsonl`` (the graded solutions, resumable) and
``DIR/steps.jsonl`` (stepwise prompt/completions/labels rows plus id, sample, values), ready for
``rl-reason train --config recipes/prm.yaml data.train=DIR/steps.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses

from rl_reason.cli import checks

# The flag type of each MCLabelConfig field (defaults and help come from the config itself).
_FLAG_TYPES = {"limit": checks.non_negative_int, "n": checks.positive_int, "k": checks.positive_int,
               "max_steps": checks.non_negative_int, "temperature": checks.positive_float,
               "max_new_tokens": checks.positive_int, "template": str}


def handle(args: argparse.Namespace) -> int:
    from rl_reason.trainers.post_config import MCLabelConfig, StepDataConfig

    checks.model_name(args.model)
    checks.dataset(args.data, "--data")
    out = checks.output_dir(args.out)
    for name in ("steps.jsonl", "samples.jsonl"):  # the files it writes, never over the input
        checks.output_file(out / name, "--out", inputs=(args.data,))
    if not args.separator:
        raise checks.UserError("--separator must not be empty")
    if not checks.load_examples(args.data, "--data", limit=args.limit or None):  # bad rows fail before the model loads
        raise checks.UserError(f"--data {args.data}: no rows")

    from rl_reason.models import load_model
    from rl_reason.trainers.prm_labels import mc_label

    label = MCLabelConfig(data=args.data, **{name: getattr(args, name) for name in _FLAG_TYPES})
    StepDataConfig(separator=args.separator)  # the same checks as the trainer's
    with checks.loading(f"--model {args.model}"):
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    rows = mc_label(model, tokenizer, label, args.separator, args.out, seed=args.seed, progress=not args.quiet)
    steps = sum(len(r["labels"]) for r in rows)
    good = sum(sum(r["labels"]) for r in rows)
    print(f"{len(rows)} solutions, {steps} steps ({good} labelled good) -> {args.out}/steps.jsonl")
    return 0


def register(subparsers) -> None:
    from rl_reason.trainers.post_config import MCLabelConfig, StepDataConfig

    p = subparsers.add_parser(
        "prm-label", help="Monte-Carlo step labels from a model's own solutions, for a process reward model",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="policy: alias (smollm2-135m), hub id, local HF dir or .gguf")
    p.add_argument("--data", required=True, help="prompts: dataset name[:split] (e.g. arithmetic:train) or JSONL")
    p.add_argument("--out", required=True, help="output folder: samples.jsonl (graded solutions) and steps.jsonl")
    for f in dataclasses.fields(MCLabelConfig):
        if f.name in _FLAG_TYPES:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=_FLAG_TYPES[f.name], default=f.default,
                           help=f"{f.metadata['help']} (default {f.default})")
    sep = next(f for f in dataclasses.fields(StepDataConfig) if f.name == "separator")
    p.add_argument("--separator", default=sep.default, help=f"{sep.metadata['help']} (default {sep.default!r})")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)

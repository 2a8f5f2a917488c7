"""``rl-reason pairs --model M --data D --n 8 --out DIR``: verifier-filtered preference data.

Samples ``n`` answers per prompt with the model, grades them with the verifiers (the eval
harness: resumable ``DIR/samples.jsonl``), keeps prompts with both a correct and an incorrect
answer and writes ``DIR/pairs.jsonl`` in TRL's prompt/chosen/rejected format (the data
pipeline's ``build_dpo_pairs``), ready for ``recipes/dpo_verified.yaml`` or ``recipes/rm.yaml``.

``--unpaired`` writes ``DIR/unpaired.jsonl`` instead: every distinct answer as a TRL
prompt/completion/label row, label = verified correct (KTO's data, ``trainer: kto``).

``--step-level`` writes Step-DPO pairs to ``DIR/pairs.jsonl``: each wrong answer is split into
steps (one per line; a one-line answer into sentences), ``--k`` continuations are sampled from
each step prefix and graded, and the first step after which none (at most ``--fail-rate``) of
them is verified is the wrong step; prompt = problem + the steps before it, chosen = the first
step of a verified continuation from there, rejected = the wrong step. Train them with
``trainer: dpo`` (``data.train=DIR/pairs.jsonl``). Cost: up to k samples per step of each
wrong answer searched (``--max-pairs-per-prompt`` caps the pairs, and so the search, per prompt).
"""

from __future__ import annotations

import argparse

from rl_reason.cli import checks


def handle(args: argparse.Namespace) -> int:
    from rl_reason.config.flags import config_from_flags
    from rl_reason.trainers.post_config import MintPairsConfig

    mint = config_from_flags(MintPairsConfig, args)
    checks.model_name(args.model)
    checks.dataset(args.data, "--data")
    out = checks.output_dir(args.out)
    written = "unpaired.jsonl" if args.unpaired else "pairs.jsonl"
    for name in (written, "samples.jsonl"):  # the files it writes, never over the input
        checks.output_file(out / name, "--out", inputs=(args.data,))
    if not checks.load_examples(args.data, "--data", limit=args.limit or None):  # bad rows fail here, before the model loads
        raise checks.UserError(f"--data {args.data}: no rows")

    from rl_reason.models import load_model
    from rl_reason.trainers.minting import mint_pairs

    with checks.loading(f"--model {args.model}"):
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    progress = not args.quiet
    if args.unpaired:
        from rl_reason.trainers.minting import mint_unpaired

        rows = mint_unpaired(model, tokenizer, mint, args.out, seed=args.seed, progress=progress)
        good = sum(r["label"] for r in rows)
        print(f"{len(rows)} rows ({good} desirable, {len(rows) - good} undesirable) from "
              f"{len({r['id'] for r in rows})} prompts -> {out / written}")
    elif args.step_level:
        from rl_reason.trainers.minting import mint_step_pairs

        rows = mint_step_pairs(model, tokenizer, mint, args.out, seed=args.seed, progress=progress, k=args.k,
                               fail_rate=args.fail_rate)
        print(f"{len(rows)} step-level pairs from {len({r['id'] for r in rows})} prompts -> {out / written}")
    else:
        rows = mint_pairs(model, tokenizer, mint, args.out, seed=args.seed, progress=progress)
        print(f"{len(rows)} pairs from {len({r['id'] for r in rows})} prompts with both a correct and an incorrect "
              f"answer -> {out / written}")
    return 0


def register(subparsers) -> None:
    from rl_reason.config.flags import add_config_flags
    from rl_reason.trainers.post_config import MintPairsConfig

    p = subparsers.add_parser(
        "pairs", help="sample a model, verify, and write DPO/RM pairs (correct vs incorrect answers), KTO rows "
        "(--unpaired) or Step-DPO pairs (--step-level)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="policy: alias (smollm2-135m), hub id, local HF dir or .gguf")
    p.add_argument("--out", required=True, help="output folder: samples.jsonl (graded, resumable) and pairs.jsonl")
    # The sampling knobs are MintPairsConfig's, the `pairs:` section of recipes/rm.yaml and dpo_verified.yaml.
    add_config_flags(p, MintPairsConfig, required=["data"], types={
        "limit": checks.non_negative_int, "n": checks.positive_int, "temperature": checks.non_negative_float,
        "max_new_tokens": checks.positive_int, "max_pairs_per_prompt": checks.non_negative_int},
        help={"data": "prompts: dataset name[:split] (e.g. arithmetic:train, gsm8k) or JSONL"})
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--unpaired", action="store_true",
                      help="write unpaired.jsonl: every distinct answer labelled by correctness (KTO rows)")
    kind.add_argument("--step-level", action="store_true",
                      help="write Step-DPO pairs over the first wrong step of each wrong answer (see above)")
    p.add_argument("--k", type=checks.positive_int, default=4,
                   help="--step-level: continuations sampled per step prefix (default 4)")
    p.add_argument("--fail-rate", type=checks.non_negative_float, default=0.0,
                   help="--step-level: a prefix whose verified share of continuations is at most this has failed (default 0)")
    p.set_defaults(func=handle)

"""``rl-reason pairs --model M --data D --n 8 --out DIR``: verifier-filtered preference pairs.

Samples ``n`` answers per prompt with the model, grades them with the verifiers (the eval
harness: resumable ``DIR/samples.jsonl``), keeps prompts with both a correct and an incorrect
answer and writes ``DIR/pairs.jsonl`` in TRL's prompt/chosen/rejected format (the data
pipeline's ``build_dpo_pairs``), ready for ``recipes/dpo_verified.yaml`` or ``recipes/rm.yaml``.
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
    for name in ("pairs.jsonl", "samples.jsonl"):  # the files it writes, never over the input
        checks.output_file(out / name, "--out", inputs=(args.data,))
    if not checks.load_examples(args.data, "--data", limit=args.limit or None):  # bad rows fail here, before the model loads
        raise checks.UserError(f"--data {args.data}: no rows")

    from rl_reason.models import load_model
    from rl_reason.trainers.minting import mint_pairs

    with checks.loading(f"--model {args.model}"):
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    pairs = mint_pairs(model, tokenizer, mint, args.out, seed=args.seed, progress=not args.quiet)
    prompts = len({p["id"] for p in pairs})
    print(f"{len(pairs)} pairs from {prompts} prompts with both a correct and an incorrect answer -> {args.out}/pairs.jsonl")
    return 0


def register(subparsers) -> None:
    from rl_reason.config.flags import add_config_flags
    from rl_reason.trainers.post_config import MintPairsConfig

    p = subparsers.add_parser(
        "pairs", help="sample a model, verify, and write DPO/RM pairs (correct vs incorrect answers)",
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
    p.set_defaults(func=handle)

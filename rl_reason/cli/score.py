"""``rl-reason score --model RUN/final --data rows.jsonl``: score responses with a trained reward model.

Rows with ``prompt`` and ``response`` get a ``score``; TRL pairs (``prompt``/``chosen``/
``rejected``) get ``chosen_score`` and ``rejected_score``, and the pairwise accuracy is printed.
Scored rows go to ``--out`` (JSONL, written atomically) or stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rl_reason.cli import checks
from rl_reason.cli.checks import UserError


def _check_reward_model(name: str) -> None:
    """Only a trained scalar head gives meaningful scores: a policy checkpoint would get a fresh
    zero head and score every row 0."""
    from rl_reason.model_names import is_scalar_model_dir

    path = Path(name).expanduser()
    if not path.is_dir():
        raise UserError(f"--model {name}: no such folder; score needs a trained reward model folder "
                        "(RUN/final of recipes/rm.yaml)")
    if not is_scalar_model_dir(path):
        raise UserError(f"--model {name} has no trained scalar (reward) head: its config.json names no "
                        "*ForSequenceClassification architecture; train one with recipes/rm.yaml")


def _load_score_rows(args: argparse.Namespace) -> list[dict]:
    from rl_reason.trainers.pair_data import load_rows

    if args.prompt is not None:
        return [{"prompt": args.prompt, "response": args.response or ""}]
    if args.data.endswith((".jsonl", ".json")) or Path(args.data).exists():
        checks.input_file(args.data, "--data")
    try:
        rows = load_rows(args.data, (), args.limit)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(f"--data {args.data}: {e}") from None
    if not rows:
        raise UserError(f"--data {args.data}: no rows")
    keys = ("chosen", "rejected") if "chosen" in rows[0] else ("response",)
    for i, row in enumerate(rows):
        missing = [k for k in ("prompt", *keys) if k not in row]
        if missing:
            raise UserError(f"--data {args.data} row {i + 1}: no {', '.join(missing)}")
    return rows


def handle(args: argparse.Namespace) -> int:
    _check_reward_model(args.model)
    if args.out:
        checks.output_file(args.out, "--out", inputs=(args.data,) if args.data else ())
    rows = _load_score_rows(args)

    from tqdm.auto import tqdm

    from rl_reason.io import atomic_write_text
    from rl_reason.models.heads import load_scalar_model
    from rl_reason.trainers.common.encoding import as_text
    from rl_reason.trainers.reward_model import score_texts

    with checks.loading(f"--model {args.model}"):
        model, tokenizer = load_scalar_model(args.model, dtype=args.dtype, device=args.device)
    keys = ("chosen", "rejected") if "chosen" in rows[0] else ("response",)
    for start in tqdm(range(0, len(rows), args.batch_size), desc="score", unit="batch", disable=args.quiet):
        chunk = rows[start : start + args.batch_size]
        prompts = [as_text(r["prompt"], tokenizer, "prompt") for r in chunk]
        for key in keys:
            scores = score_texts(model, tokenizer, prompts, [as_text(r[key], tokenizer, key) for r in chunk],
                                 args.max_prompt_tokens, args.max_response_tokens, args.batch_size)
            for r, s in zip(chunk, scores.tolist()):
                r["score" if key == "response" else f"{key}_score"] = s
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    if keys == ("chosen", "rejected") and rows:
        acc = sum(r["chosen_score"] > r["rejected_score"] for r in rows) / len(rows)
        print(f"pairwise accuracy {acc:.3f} on {len(rows)} pairs", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("score", help="score prompt/response rows (or TRL pairs) with a trained reward model",
                              description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="reward model folder (RUN/final of recipes/rm.yaml)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="JSONL (or hub id) with prompt+response or prompt+chosen+rejected rows")
    src.add_argument("--prompt", help="score one prompt (with --response) instead of a file")
    p.add_argument("--response", help="the response to --prompt")
    p.add_argument("--out", help="write scored rows here (default: stdout)")
    p.add_argument("--limit", type=checks.non_negative_int, default=0, help="score only the first N rows (default 0 = all)")
    p.add_argument("--batch-size", type=checks.positive_int, default=16, help="sequences per forward (default 16)")
    p.add_argument("--max-prompt-tokens", type=checks.positive_int, default=512, help="prompt tokens kept (longer prompts are an error; default 512)")
    p.add_argument("--max-response-tokens", type=checks.positive_int, default=1024, help="response tokens kept (default 1024)")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)

"""One GRPO micro-batch's forward + backward through ``token_logprobs`` in each batch layout.

SmolLM2-135M-Instruct (fp32, training mode), ``--groups`` groups x 8 rows of random token ids:
prompts of 70-89 tokens (one per group), responses of 30-64 tokens (a synthetic shape, not
rollouts). Layouts: the shared-prompt forward (the trainer's default), padded rows, and for each
``--pack-tokens`` value packed rows with repeated prompts and with shared prompts. Prints the
seconds of each and the largest log-prob difference from the first layout.

    python3 benchmarks/packed_forward.py [--groups 2] [--threads 2] [--pack-tokens 512]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rl_reason.models import load_model, padded_batch, token_logprobs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=2, help="groups of 8 rows in the micro-batch")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--pack-tokens", type=int, nargs="+", default=[512], help="packed row budgets to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model("smollm2-135m")
    model.train()
    gen = torch.Generator().manual_seed(0)

    def tokens(low: int, high: int) -> list[int]:
        length = int(torch.randint(low, high, (1,), generator=gen))
        return torch.randint(3, model.config.vocab_size, (length,), generator=gen).tolist()

    prompts, responses, groups = [], [], []
    for group in range(args.groups):
        prompt = tokens(70, 90)
        for _ in range(8):
            prompts.append(prompt)
            responses.append(tokens(30, 65))
            groups.append(group)
    ids, mask, R = padded_batch(prompts, responses)
    index = torch.tensor(groups)
    print(f"{len(prompts)} rows, {int(mask.sum())} attended tokens, {ids.numel()} padded", flush=True)
    layouts = {"shared": {"prompt_index": index}, "padded": {}}
    for n in args.pack_tokens:
        layouts[f"packed {n}"] = {"pack_tokens": n}
        layouts[f"packed {n} + shared"] = {"pack_tokens": n, "prompt_index": index}
    first = None
    for name, kwargs in layouts.items():
        model.zero_grad()
        start = time.perf_counter()
        logp, _ = token_logprobs(model, ids, mask, R, num_chunks=2, **kwargs)
        forward = time.perf_counter() - start
        logp.sum().backward()
        total = time.perf_counter() - start
        first = logp.detach() if first is None else first
        diff = float((logp.detach() - first).abs().max())
        print(
            f"{name}: forward {forward:.2f} s, backward {total - forward:.2f} s, total {total:.2f} s, "
            f"max |log-prob diff| {diff:.1e}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

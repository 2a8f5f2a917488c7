"""Rollout throughput: the HF engine vs a plain ``model.generate(num_return_sequences=n)`` loop.

Samples ``--n`` responses for each of ``--prompts`` arithmetic chat prompts with SmolLM2-135M
(temperature 1, no top-k/top-p) and prints generated tokens per second for each engine in the
same run, and their ratio (target: HF engine >= 1.5x the plain loop). ``--engine vllm`` adds a
vLLM row (GPU machine with the ``[vllm]`` extra). Also prints how long a cached model load takes.

    python3 benchmarks/rollout_speed.py [--max-new-tokens 64] [--device cpu] [--engine vllm]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rl_reason.data_pipelines.arithmetic import make_arithmetic
from rl_reason.models import load_model
from rl_reason.rollout import SamplingParams, get_engine


def plain_generate_loop(model, tokenizer, prompts, n, max_new_tokens) -> int:
    """The peer: one ``generate`` call per prompt; returns generated tokens up to and including EOS."""
    eos = tokenizer.eos_token_id
    total = 0
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").to(model.device)
        out = model.generate(**ids, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=max_new_tokens,
                             num_return_sequences=n, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, ids["input_ids"].shape[1]:].tolist():
            total += row.index(eos) + 1 if eos in row else len(row)
    return total


def timed(fn):
    """(tokens, wall seconds, CPU seconds of this process): on a shared machine the CPU time is
    the steadier measure of work (with --threads 1 it is the compute actually spent)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start, start_cpu = time.perf_counter(), time.process_time()
    tokens = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - start, time.process_time() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model alias, path or hub id")
    parser.add_argument("--prompts", type=int, default=16, help="number of prompts")
    parser.add_argument("--n", type=int, default=8, help="responses per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generation budget per response")
    parser.add_argument("--device", default="cpu", help="device of the HF rows (cpu, cuda)")
    parser.add_argument("--engine", choices=["vllm"], help="also time this engine (needs a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    load_model(args.model)  # converts a GGUF into the cache when it is cold
    start = time.perf_counter()
    model, tokenizer = load_model(args.model, device=args.device)
    print(f"cached load_model({args.model!r}): {time.perf_counter() - start:.2f} s")
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": ex.prompt}], tokenize=False, add_generation_prompt=True)
        for ex in make_arithmetic(args.prompts, seed=0)
    ]
    params = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    engine = get_engine("hf", model=model, tokenizer=tokenizer, max_batch_size=args.prompts * args.n)

    with torch.inference_mode():  # warm-up: first calls pay one-off allocation and dispatch costs
        plain_generate_loop(model, tokenizer, prompts[:1], 2, 2)
    engine.generate(prompts[:1], 2, SamplingParams(max_new_tokens=2))
    rows = []
    with torch.inference_mode():
        rows.append(("plain generate loop", *timed(lambda: plain_generate_loop(model, tokenizer, prompts, args.n, args.max_new_tokens))))
    rows.append(("rl_reason HF engine", *timed(lambda: sum(len(c.token_ids) for g in engine.generate(prompts, args.n, params) for c in g))))
    if args.engine == "vllm":
        del engine, model
        vllm_engine = get_engine("vllm", model=args.model)
        vllm_engine.generate(prompts[:1], 1, SamplingParams(max_new_tokens=4))  # warm-up (graphs, allocator)
        rows.append(("vLLM engine", *timed(lambda: sum(len(c.token_ids) for g in vllm_engine.generate(prompts, args.n, params) for c in g))))

    print(f"{args.prompts} prompts x {args.n} samples, max_new_tokens={args.max_new_tokens}, device={args.device}, "
          f"torch threads={torch.get_num_threads()}")
    base, base_cpu = rows[0][1] / rows[0][2], rows[0][1] / rows[0][3]
    print(f"{'':22s} {'tokens':>6s} {'wall s':>8s} {'tok/s':>8s} {'ratio':>6s} {'CPU s':>8s} {'tok/CPU s':>9s} {'ratio':>6s}")
    for name, tokens, wall, cpu in rows:
        print(f"{name:22s} {tokens:6d} {wall:8.1f} {tokens / wall:8.1f} {tokens / wall / base:5.2f}x "
              f"{cpu:8.1f} {tokens / cpu:9.1f} {tokens / cpu / base_cpu:5.2f}x")


if __name__ == "__main__":
    main()

"""vLLM 0.24 smoke test on one GPU: colocated LLM, n=8 sampling with log-probs, sleep/wake, weight update.

Not yet run on a GPU (2026-11-23: no machine was lent to this task; see docs/gpu_results.md).
Run on the GPU machine after scripts/gpu/install_vllm_wheels.sh:
    PYTHONPATH=/tmp/site python3 scripts/gpu/vllm_smoke.py --model DIR [--out results.json]
It checks, and exits non-zero when a check fails:
  * generate(n=8) returns 8 samples per prompt with one log-prob per sampled token;
  * vLLM's prompt log-probs agree with a transformers copy of the same weights (parity probe);
  * sleep(level=1) frees GPU memory and wake_up() restores identical greedy output;
  * a weight update through the worker's ``load_weights`` changes the output (perturbed weights),
    and pushing the original weights back restores the parity-probe values.
"""

from __future__ import annotations

import argparse
import json
import os
import time

# The weight update below calls into the worker, which runs in this process only with V1
# multiprocessing off (as TRL's colocate mode does).
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from vllm import LLM, SamplingParams  # noqa: E402

PROMPTS = [
    "What is 12 + 35? Put the final answer in \\boxed{}.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Write the first five prime numbers.",
    "If x + 3 = 10, what is x?",
]
PROBE = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"


def chat(tok, text: str) -> str:
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def vllm_prompt_logprobs(llm: LLM, ids: list[int]) -> torch.Tensor:
    out = llm.generate(
        [{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0), use_tqdm=False
    )[0]
    return torch.tensor([d[t].logprob for d, t in zip(out.prompt_logprobs[1:], ids[1:])])


def hf_prompt_logprobs(model, ids: list[int]) -> torch.Tensor:
    x = torch.tensor([ids], device="cuda")
    with torch.no_grad():
        logits = model(x).logits.float()[0, :-1]
    return torch.log_softmax(logits, -1).gather(1, x[0, 1:, None])[:, 0].cpu()


def gpu_used_gib() -> float:
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**30


def worker_model(llm: LLM):
    return llm.llm_engine.model_executor.driver_worker.worker.model_runner.model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (safetensors + tokenizer)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--max-tokens", type=int, default=256, help="max new tokens per sample")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.3, help="vLLM's share of GPU memory")
    ap.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / torch.compile")
    args = ap.parse_args()
    res: dict = {"vllm_multiprocessing": os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"]}
    failures: list[str] = []

    t0 = time.perf_counter()
    llm = LLM(
        model=args.model,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enable_sleep_mode=True,
        dtype="bfloat16",
        seed=0,
        enforce_eager=args.enforce_eager,
    )
    res["init_s"] = round(time.perf_counter() - t0, 2)
    tok = AutoTokenizer.from_pretrained(args.model)
    prompts = [chat(tok, p) for p in PROMPTS]

    # n=8 sampling with per-token log-probs; warm once, then time
    sp = SamplingParams(n=8, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, logprobs=0, seed=0)
    llm.generate(prompts, sp, use_tqdm=False)
    torch.cuda.synchronize()
    t = time.perf_counter()
    outs = llm.generate(prompts * 4, sp, use_tqdm=False)  # 16 prompts x 8 samples, like the rollout benchmark
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    n_tok = sum(len(c.token_ids) for o in outs for c in o.outputs)
    res["gen_16x8_tokens"] = n_tok
    res["gen_16x8_s"] = round(dt, 3)
    res["gen_tokens_per_s"] = round(n_tok / dt, 1)
    for o in outs:
        if len(o.outputs) != 8:
            failures.append(f"expected 8 samples, got {len(o.outputs)}")
        for c in o.outputs:
            if c.logprobs is None or len(c.logprobs) != len(c.token_ids):
                failures.append("log-probs missing or not one per sampled token")
                break
            lp = [c.logprobs[i][tid].logprob for i, tid in enumerate(c.token_ids)]
            if not all(v <= 0.0 for v in lp):
                failures.append("positive log-prob")
    res["finish_reasons"] = sorted({c.finish_reason for o in outs for c in o.outputs})
    res["sample_text"] = outs[0].outputs[0].text[:200]

    # parity probe: vLLM prompt log-probs vs transformers with the same bf16 weights
    probe_ids = tok(PROBE).input_ids
    hf = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    lp_v = vllm_prompt_logprobs(llm, probe_ids)
    lp_h = hf_prompt_logprobs(hf, probe_ids)
    res["parity_max_abs_diff"] = round((lp_v - lp_h).abs().max().item(), 4)
    res["parity_mean_abs_diff"] = round((lp_v - lp_h).abs().mean().item(), 4)
    res["probe_seq_logprob_vllm"] = round(lp_v.sum().item(), 3)
    res["probe_seq_logprob_hf"] = round(lp_h.sum().item(), 3)
    if res["parity_mean_abs_diff"] > 0.05:
        failures.append(f"parity mean |dlogp| {res['parity_mean_abs_diff']} > 0.05")

    # sleep / wake
    greedy = SamplingParams(temperature=0.0, max_tokens=64)
    before = [o.outputs[0].text for o in llm.generate(prompts, greedy, use_tqdm=False)]
    res["gpu_used_awake_gib"] = round(gpu_used_gib(), 2)
    t = time.perf_counter()
    llm.sleep(level=1)
    res["sleep_s"] = round(time.perf_counter() - t, 3)
    res["gpu_used_asleep_gib"] = round(gpu_used_gib(), 2)
    t = time.perf_counter()
    llm.wake_up()
    res["wake_s"] = round(time.perf_counter() - t, 3)
    after = [o.outputs[0].text for o in llm.generate(prompts, greedy, use_tqdm=False)]
    res["greedy_same_after_wake"] = before == after
    if not before == after:
        failures.append("greedy output changed across sleep/wake")
    if not res["gpu_used_asleep_gib"] < res["gpu_used_awake_gib"] - 0.5:
        failures.append("sleep freed less than 0.5 GiB")

    # weight update through the worker's load_weights: perturb, check change, restore, check parity
    state = load_file(os.path.join(args.model, "model.safetensors"), device="cuda")
    model = worker_model(llm)
    gen = torch.Generator(device="cuda").manual_seed(0)
    perturbed = [
        (k, v + 0.05 * v.float().std() * torch.randn(v.shape, generator=gen, device="cuda", dtype=v.dtype))
        if v.ndim == 2 else (k, v)
        for k, v in state.items()
    ]
    torch.cuda.synchronize()
    t = time.perf_counter()
    model.load_weights(weights=iter(perturbed))
    torch.cuda.synchronize()
    res["weight_update_s"] = round(time.perf_counter() - t, 4)
    res["weight_update_mb"] = round(sum(v.numel() * v.element_size() for _, v in perturbed) / 2**20, 1)
    llm.reset_prefix_cache()
    lp_p = vllm_prompt_logprobs(llm, probe_ids)
    res["perturbed_mean_abs_diff"] = round((lp_p - lp_h).abs().mean().item(), 4)
    if not res["perturbed_mean_abs_diff"] > res["parity_mean_abs_diff"] + 0.01:
        failures.append("perturbed weights did not change vLLM's log-probs (silent non-sync)")
    model.load_weights(weights=iter(state.items()))
    llm.reset_prefix_cache()
    lp_r = vllm_prompt_logprobs(llm, probe_ids)
    res["restored_max_abs_diff_vs_before"] = round((lp_r - lp_v).abs().max().item(), 5)
    if res["restored_max_abs_diff_vs_before"] > 1e-3:
        failures.append("restored weights do not reproduce the original log-probs")

    # the same update through the public collective_rpc path (works with multiprocessing on too)
    def load_from_file(worker, path):
        from safetensors.torch import load_file as lf

        worker.model_runner.model.load_weights(weights=iter(lf(path, device="cuda").items()))
        return True

    t = time.perf_counter()
    ok = llm.collective_rpc(load_from_file, args=(os.path.join(args.model, "model.safetensors"),))
    res["collective_rpc_update_s"] = round(time.perf_counter() - t, 4)
    res["collective_rpc_ok"] = ok

    res["failures"] = failures
    print(json.dumps(res, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()

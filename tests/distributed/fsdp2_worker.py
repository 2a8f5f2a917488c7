"""The FSDP2 engine on its own, run by test_fsdp2.py under ``torchrun`` (2 ranks, gloo), writing
results to OUT/rank{R}.pt for each model shape (llama with separate or tied embedding and head,
with activation checkpointing, qwen2): one clipped SGD step on each rank's half of a batch (the loss a sum over the whole
batch's tokens divided by their global count, as the trainers' token-mean loss), greedy generation of a
different length per rank inside ``full_weights()``, and the exported HF folder.

usage: fsdp2_worker.py OUT
"""

import copy
import sys
from pathlib import Path

import torch

from rl_reason.distributed import setup as dist
from rl_reason.distributed.fsdp2 import FSDP2Engine
from rl_reason.models import tiny_model, token_logprobs
from rl_reason.rollout import SamplingParams, get_engine

# name: (architecture, tied embedding and head, activation checkpointing as train.gradient_checkpointing)
SHAPES = {
    "llama": ("llama", False, False),
    "llama_tied": ("llama", True, False),
    "llama_tied_checkpointed": ("llama", True, True),
    "qwen2": ("qwen2", False, False),
}
ROWS, PROMPT, RESPONSE = 4, 4, 5
LR, CLIP = 0.5, 0.05  # a clip far below the gradient norm: a local norm would scale differently


def model_of(shape: str):
    arch, tied, checkpointed = SHAPES[shape]
    model, tokenizer = tiny_model(arch, seed=0)
    if tied:  # as SmolLM2 and Qwen2.5-0.5B: the head reuses the embedding matrix
        model.lm_head.weight = model.model.embed_tokens.weight
        model.config.tie_word_embeddings = True
    if checkpointed:  # each layer's forward runs again in backward: FSDP2 gathers it again
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train(), tokenizer


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 250, (ROWS, PROMPT + RESPONSE), generator=g)
    mask = torch.ones_like(ids)
    mask[1, PROMPT + 2 :] = 0  # rows of unequal length: the normaliser is the global token count
    mask[2, :1] = 0
    return ids, mask


def loss_on(model, rows: slice, ranks: int = 1) -> torch.Tensor:
    """Engines average gradients over the ranks (as DDP): like the trainers' losses
    (``aggregate_loss(dp_size=...)``) the rank's share is scaled by the rank count."""
    ids, mask = batch()
    logp, _ = token_logprobs(model, ids[rows], mask[rows], RESPONSE, num_chunks=2)
    return -logp.sum() * ranks / mask[:, PROMPT:].sum()


def run(shape: str, out: Path) -> dict:
    model, tokenizer = model_of(shape)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    engine = FSDP2Engine(model, lambda params: torch.optim.SGD(params, lr=LR), None, max_grad_norm=CLIP)
    sharded = {n: (tuple(p.to_local().shape), tuple(p.shape)) for n, p in model.named_parameters()}
    half = ROWS // dist.world_size()
    engine.zero_grad()
    engine.backward(loss_on(model, slice(dist.rank() * half, (dist.rank() + 1) * half), dist.world_size()))
    norm = engine.step()
    prompt = SamplingParams(temperature=0.0, max_new_tokens=2 + 4 * dist.rank(), seed=0)
    model.eval()
    with engine.full_weights():
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        tokens = get_engine("hf", model=model, tokenizer=tokenizer).generate(["1 + 2 ="], 1, prompt)[0][0].token_ids
    engine.export_model(out / shape, tokenizer)
    return {"start": start, "sharded": sharded, "norm": norm, "params": params, "tokens": tokens}


def reference(shape: str) -> dict:
    """One process, the whole batch, plain torch: what every rank must end with."""
    model, _ = model_of(shape)
    loss_on(model, slice(0, ROWS)).backward()
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP))
    with torch.no_grad():
        for p in model.parameters():
            p -= LR * p.grad
    return {"norm": norm, "model": copy.deepcopy(model.eval())}


def main(out: Path) -> None:
    dist.init_distributed("gloo", 120.0, "cpu")
    results = {shape: run(shape, out) for shape in SHAPES}
    torch.save(results, out / f"rank{dist.rank()}.pt")
    dist.finish_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

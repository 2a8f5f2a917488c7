"""The FSDP2 engine (``distributed.engine: fsdp2``) on 2 gloo ranks against plain torch in one
process: separate and tied embedding/head (a tied weight must live in one shard unit), with
activation checkpointing, and a second architecture; and its clear refusals. The worker is
fsdp2_worker.py; the trainers' 2-rank FSDP2 updates are in test_grpo_data_parallel.py and
test_offline_data_parallel.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rl_reason.config import load_config
from rl_reason.trainers.grpo_config import GRPOConfig
from tests.distributed import free_port, fsdp2_worker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp2")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "tests/distributed/fsdp2_worker.py",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.parametrize("shape", list(fsdp2_worker.SHAPES))
def test_two_sharded_ranks_step_generate_and_export_as_one_process(two_ranks, shape):
    from transformers import AutoModelForCausalLM

    from rl_reason.rollout import SamplingParams, get_engine

    out, ranks = two_ranks
    ref = fsdp2_worker.reference(shape)
    expected = dict(ref["model"].named_parameters())
    _, tokenizer = fsdp2_worker.model_of(shape)
    for rank, got in enumerate(ranks):
        got = got[shape]
        # every parameter is split in two along dim 0, rank 0 taking the odd row (259-token vocabulary)
        assert all(local[0] == (full[0] + 1 - rank) // 2 for local, full in got["sharded"].values())
        assert got["norm"] == pytest.approx(ref["norm"], rel=1e-5) and got["norm"] > 5 * fsdp2_worker.CLIP
        assert got["params"].keys() == expected.keys()
        for name, param in expected.items():
            torch.testing.assert_close(got["params"][name], param.detach(), rtol=1e-5, atol=1e-6, msg=name)
            assert not torch.equal(got["params"][name], got["start"][name]), name  # the step moved it
        greedy = SamplingParams(temperature=0.0, max_new_tokens=2 + 4 * rank, seed=0)
        assert (
            got["tokens"]
            == get_engine("hf", model=ref["model"], tokenizer=tokenizer)
            .generate(["1 + 2 ="], 1, greedy)[0][0]
            .token_ids
        )
    exported = AutoModelForCausalLM.from_pretrained(out / shape)
    for name, param in exported.named_parameters():
        torch.testing.assert_close(param, expected[name].detach(), rtol=1e-5, atol=1e-6, msg=name)
    assert (exported.lm_head.weight is exported.model.embed_tokens.weight) == fsdp2_worker.SHAPES[shape][1]


def test_fsdp2_is_a_config_choice_and_refuses_lora():
    from rl_reason.distributed.fsdp2 import FSDP2Engine
    from rl_reason.models import tiny_model
    from rl_reason.models.lora import apply_lora
    from rl_reason.trainers.grpo_config import LoRAConfig

    assert load_config(GRPOConfig, None, ["distributed.engine=fsdp2"]).distributed.engine == "fsdp2"
    model = apply_lora(tiny_model("llama")[0], LoRAConfig(r=4, alpha=8, target_modules=["q_proj"]))
    with pytest.raises(ValueError, match="fsdp2 does not support LoRA"):
        FSDP2Engine(model, lambda params: torch.optim.SGD(params, lr=0.1), None)

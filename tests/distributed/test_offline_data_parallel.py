"""The offline trainers (RM, DPO, KTO, SFT share one loop) on 2 ranks (torchrun, gloo on loopback;
torch and FSDP2 engines):
each rank trains on its share of the step's rows and the update equals one process's over the
whole batch. The worker is offline_worker.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.distributed import free_port

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
WORKER = "tests/distributed/offline_worker.py"


def _run(cmd: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("engine", ["torch", "fsdp2"])
@pytest.mark.parametrize("kind", ["sft", "kto"])  # KTO: its reference point is over the whole step batch
def test_two_ranks_split_the_batch_and_match_one_process(tmp_path, kind, engine):
    _run([sys.executable, WORKER, str(tmp_path / "one"), kind, "torch"])
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(free_port()), WORKER, str(tmp_path / "two"), kind, engine])
    one = torch.load(tmp_path / "one" / "world1_rank0.pt")
    two = [torch.load(tmp_path / "two" / f"world2_rank{r}.pt") for r in (0, 1)]
    # Each rank trained on half of each step's rows, together on exactly the one process's rows.
    assert [len(r["seen"]) for r in two] == [len(one["seen"]) // 2] * 2
    assert sorted(two[0]["seen"] + two[1]["seen"]) == sorted(one["seen"])
    for rank in two:  # gradients averaged over the ranks (FSDP2: gathered from the shards)
        assert rank["grads"].keys() == one["grads"].keys()
        for name, grad in one["grads"].items():
            torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-4, atol=1e-7, msg=name)
    rows = lambda text: [json.loads(line) for line in text.splitlines()]  # noqa: E731
    for a, b in zip(rows(one["metrics"]), rows(two[0]["metrics"]), strict=True):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-5)
        assert b["train/grad_norm"] == pytest.approx(a["train/grad_norm"], rel=1e-5)
        if kind == "kto":
            assert b["train/kl"] == pytest.approx(a["train/kl"], rel=1e-5) and a["train/kl"] > 0
    assert all(g.abs().sum() > 0 for g in one["grads"].values())  # a real step: the comparison can fail

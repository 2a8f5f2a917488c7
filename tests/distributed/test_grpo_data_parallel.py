"""Real 2-rank runs of the GRPO update (gloo on loopback) against one process over the same
global batch, through torchrun (plain torch engine and FSDP2) and the deepspeed launcher
(ZeRO-2), and 2-rank DeepSpeed and FSDP2 checkpoints that resume exactly. The worker is
grpo_worker.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rl_reason.algorithms import AGGREGATION_MODES
from tests.distributed import free_port

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # many launches of 2 processes: minutes on 2 cores
REPO = Path(__file__).resolve().parents[2]
WORKER = "tests/distributed/grpo_worker.py"


def _launch(launcher: str, out: Path, engine: str, phase: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1")
    port = str(free_port())
    cmd = {
        "python": [sys.executable, WORKER],
        "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                     "127.0.0.1", "--master_port", port, WORKER],
        "deepspeed": [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_addr", "127.0.0.1",
                      "--master_port", port, WORKER],
    }[launcher] + [str(out), engine, phase]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _result(out: Path, phase: str, engine: str, world: int, rank: int) -> dict:
    return torch.load(out / f"{phase}_{engine}_world{world}_rank{rank}.pt", weights_only=False)


def _one_process(tmp_path_factory, phase: str) -> dict:
    out = tmp_path_factory.mktemp(phase)
    _launch("python", out, "torch", phase)
    return _result(out, phase, "torch", 1, 0)


def _assert_same_params(got: dict, ref: dict, what: str) -> None:
    for name, param in ref.items():
        torch.testing.assert_close(got[name], param, rtol=1e-4, atol=2e-5, msg=f"{what} {name}")


# Every engine against the one process: (launcher, distributed.engine).
ENGINES = [("torchrun", "torch"), ("deepspeed", "deepspeed"), ("torchrun", "fsdp2")]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return _one_process(tmp_path_factory, "update")


@pytest.mark.parametrize(("launcher", "engine"), ENGINES)
def test_two_ranks_match_one_process_in_every_aggregation_mode(one_process, tmp_path, launcher, engine):
    _launch(launcher, tmp_path, engine, "update")
    for rank in (0, 1):
        got = _result(tmp_path, "update", engine, 2, rank)
        for mode in AGGREGATION_MODES:
            ref, run = one_process[mode], got[mode]
            # Two optimizer updates (ppo_epochs=2, grad clipping 0.5). Loss and grad norm are global
            # quantities; token-weighted metrics (entropy) are per-rank means averaged over ranks.
            for key in ("actor/loss", "actor/grad_norm"):
                assert run["stats"][key] == pytest.approx(ref["stats"][key], rel=1e-5), (mode, key)
            _assert_same_params(run["params"], ref["params"], mode)
            if engine != "deepspeed":  # ZeRO keeps its gradients partitioned inside the optimizer
                assert run["grads"].keys() == ref["grads"].keys()
                for name, grad in ref["grads"].items():
                    torch.testing.assert_close(run["grads"][name], grad, rtol=1e-5, atol=1e-6, msg=f"{mode} {name}")
    # A different aggregation mode gives different parameters: the comparison can fail.
    modes = [one_process[m]["params"] for m in AGGREGATION_MODES]
    assert any(not torch.equal(modes[0][n], modes[1][n]) for n in modes[0])


@pytest.fixture(scope="module")
def one_process_empty_rank(tmp_path_factory):
    return _one_process(tmp_path_factory, "empty_rank")


@pytest.mark.parametrize(("launcher", "engine"), ENGINES)
def test_a_rank_left_without_groups_keeps_step_and_matches_one_process(one_process_empty_rank, tmp_path, launcher,
                                                                       engine):
    """Dynamic sampling dropped all of rank 1's groups: it still joins every collective (the
    launch would time out otherwise) and the two updates equal one process's on rank 0's rows."""
    _launch(launcher, tmp_path, engine, "empty_rank")
    one = one_process_empty_rank
    for rank in (0, 1):
        got = _result(tmp_path, "empty_rank", engine, 2, rank)
        for step in ("step1", "step2"):
            ref, run = one[step], got[step]
            for key in ("actor/loss", "actor/grad_norm"):
                assert run["stats"][key] == pytest.approx(ref["stats"][key], rel=1e-5), (step, key)
            # rank 1 has no tokens to average: rank 0's entropy is the mean over the ranks reporting it
            assert run["stats"]["actor/entropy"] == pytest.approx(ref["stats"]["actor/entropy"], rel=1e-5)
            _assert_same_params(run["params"], ref["params"], step)
    step1, step2 = one["step1"]["params"], one["step2"]["params"]
    assert any(not torch.equal(step1[n], p) for n, p in step2.items())  # the comparison can fail


@pytest.fixture(scope="module")
def one_process_critic(tmp_path_factory):
    return _one_process(tmp_path_factory, "critic")


@pytest.mark.parametrize("engine", ["torch", "fsdp2"])
def test_two_rank_ppo_critic_update_matches_one_process(one_process_critic, tmp_path, engine):
    """The value loss is a token mean over all ranks' tokens (9 on rank 0, 6 on rank 1 here):
    normalised per rank instead, the averaged gradient would weight rank 1's tokens more."""
    _launch("torchrun", tmp_path, engine, "critic")
    one = one_process_critic
    assert one["stats"]["critic/grad_norm"] > 0
    for rank in (0, 1):
        got = _result(tmp_path, "critic", engine, 2, rank)
        for key in ("critic/value_loss", "critic/grad_norm"):
            assert got["stats"][key] == pytest.approx(one["stats"][key], rel=1e-5), key
        _assert_same_params(got["params"], one["params"], "critic")


@pytest.mark.parametrize(("launcher", "engine"), [("deepspeed", "deepspeed"), ("torchrun", "fsdp2")])
def test_two_rank_sharded_checkpoint_resumes_exactly(tmp_path, launcher, engine):
    _launch(launcher, tmp_path, engine, "save")
    _launch(launcher, tmp_path, engine, "resume")
    checkpoint = tmp_path / "checkpoints" / "step_000001"
    assert (checkpoint / "model" / "model.safetensors").is_file() and (checkpoint / "rank_1" / "rng.pt").is_file()
    for rank in (0, 1):
        uninterrupted = _result(tmp_path, "save", engine, 2, rank)["step2"]
        resumed = _result(tmp_path, "resume", engine, 2, rank)
        assert resumed["state"]["rank_marker"] == rank  # each rank got its own trainer state back
        assert resumed["step2"]["stats"] == uninterrupted["stats"]
        for name, param in uninterrupted["params"].items():
            assert torch.equal(resumed["step2"]["params"][name], param), name


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero3")
    _launch("deepspeed", out, "deepspeed", "zero3_generate")
    return [_result(out, "zero3_generate", "deepspeed", 2, rank) for rank in (0, 1)]


def test_zero3_rollouts_of_unequal_length_do_not_deadlock(zero3_run):
    """ZeRO-3 gathers each module's shard on every forward, a collective all ranks must join; HF
    rollouts that stop after different numbers of decode steps would hang without the trainer's
    full-weights context (the launch has a timeout), and so would old-log-prob forwards over
    unequal shares. The greedy tokens must be the unsharded model's; the update must run."""
    from rl_reason.models import tiny_model
    from rl_reason.rollout import SamplingParams, get_engine

    model, tokenizer = tiny_model("llama", seed=0)
    expected = get_engine("hf", model=model, tokenizer=tokenizer).generate(
        ["1 + 2 = 3. 4 + 5 ="], n=1, params=SamplingParams(temperature=0.0, max_new_tokens=7, seed=0))[0][0].token_ids
    assert len(expected) == 7  # no early EOS: rank 1 really decodes 5 steps more than rank 0
    start = dict(model.named_parameters())
    for rank, got in enumerate(zero3_run):
        assert got["sharded"]  # every parameter was partitioned away from the module
        assert got["tokens"] == expected[: 2 + 5 * rank]
        assert got["update"]["stats"]["actor/updates"] == 2 and got["update"]["stats"]["actor/grad_norm"] > 0
        assert all(not torch.equal(got["update"]["params"][n], p.detach()) for n, p in start.items())


def test_zero3_update_matches_one_process(zero3_run, one_process):
    """Two micro-batches per update: ZeRO-3 adds the second's gradient partition to the first's
    only if each micro-batch is counted (``DeepSpeedEngine.backward`` does what the engine's
    forward, never run by the trainers, would); otherwise the last one alone is kept (grad
    norm 1.49 instead of 1.80)."""
    ref = one_process["token-mean"]
    for got in zero3_run:
        assert got["update"]["stats"]["actor/grad_norm"] == pytest.approx(ref["stats"]["actor/grad_norm"], rel=1e-5)
        for name, param in ref["params"].items():
            torch.testing.assert_close(got["update"]["params"][name], param, rtol=1e-4, atol=2e-5, msg=name)

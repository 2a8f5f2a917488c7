"""GRPO/DAPO loop on a tiny random model: one step learns, each DAPO part, bitwise-identical reruns and exact resume after kill -9."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rl_reason.config import load_config
from rl_reason.io import read_jsonl_records
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.grpo import GRPOTrainer, grouped_permutation
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.rewards import Scored

REPO = Path(__file__).resolve().parents[2]


class TextHashReward:
    """A deterministic reward that differs between different texts (so every group of a random
    model has signal) except for examples whose answer is even, which get a constant 0: the
    groups without signal that dynamic sampling must drop. Which groups those are depends only
    on the seeded prompt order, so the carry-over buffer is exercised reproducibly."""

    def __call__(self, examples, responses):
        out = []
        for ex, text in zip(examples, responses):
            if int(ex.answer) % 2 == 0:
                out.append(Scored(0.0, "wrong", False))
            else:
                score = (sum(ord(ch) * (i + 1) for i, ch in enumerate(text)) % 997) / 997
                out.append(Scored(score, "correct" if score > 0.5 else "wrong", score > 0.5))
        return out


class ConstantReward:
    def __call__(self, examples, responses):
        return [Scored(1.0, "correct", True) for _ in responses]


def make_cfg(tmp_path, *overrides):
    base = [
        f"output_dir={tmp_path}", "model.name=tiny:llama", "data.train=arithmetic:train", "data.template=base_boxed",
        "data.train_limit=32", "rollout.n=4", "rollout.max_new_tokens=8", "train.prompts_per_step=2",
        "train.micro_batch_size=8", "train.lr=1e-2", "train.steps=1", "log.tensorboard=false", "log.progress=false",
        "log.samples_every=0", "checkpoint.every=0",
    ]
    return load_config(GRPOConfig, None, base + list(overrides))


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_one_step_changes_every_parameter(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path, "data.train_limit=4", "train.prompts_per_step=4"), reward_fn=TextHashReward())
    # every answer odd would make all groups signal-free: check the fixture data has odd answers
    assert any(int(ex.answer) % 2 for ex in trainer.train_examples)
    before = params(trainer.model)
    trainer.train()
    after = params(trainer.model)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged
    row = read_jsonl_records(tmp_path / "metrics.jsonl")[-1]
    assert row["step"] == 1 and row["actor/grad_norm"] > 0 and "time/generate" in row and "mismatch/kl" in row
    assert (tmp_path / "checkpoints" / "step_000001" / "model" / "model.safetensors").is_file()


def test_dynamic_sampling_fills_batch_with_signal_and_carries_surplus(tmp_path):
    cfg = make_cfg(tmp_path, "dapo.dynamic_sampling=true", "dapo.max_sampling_rounds=8", "train.prompts_per_step=3",
                   "train.micro_batch_size=4")
    trainer = GRPOTrainer(cfg, reward_fn=TextHashReward())
    seen_carry, dropped = False, 0
    for step in range(1, 11):
        trainer.step = step
        carried_before = list(trainer.carried)
        groups, stats = trainer.collect_groups()
        assert len(groups) == 3 and all(g.has_signal(cfg.dapo.std_eps) for g in groups)
        assert groups[: len(carried_before)] == carried_before[:3]  # carried groups are used first
        dropped += stats["dapo/dropped_groups"]
        fresh = 3 * stats["dapo/rounds"]
        assert fresh == stats["dapo/kept_groups"] + stats["dapo/dropped_groups"] + len(trainer.carried) - max(0, len(carried_before) - 3)
        seen_carry |= bool(trainer.carried)
        if seen_carry and not trainer.carried:
            break  # the carried groups were used up by a later step
    assert dropped > 0  # even answers give constant groups, which are dropped
    assert seen_carry, "with 3 prompts per round some round should have produced surplus groups"


def test_dynamic_sampling_caps_rounds_and_skips_an_empty_update(tmp_path):
    cfg = make_cfg(tmp_path, "dapo.dynamic_sampling=true", "dapo.max_sampling_rounds=2")
    trainer = GRPOTrainer(cfg, reward_fn=ConstantReward())
    before = params(trainer.model)
    trainer.train()
    row = read_jsonl_records(tmp_path / "metrics.jsonl")[-1]
    assert row["dapo/rounds"] == 2 and row["dapo/batch_groups"] == 0 and row["actor/skipped_update"] == 1
    assert all(torch.equal(before[k], v) for k, v in params(trainer.model).items())


def test_without_dynamic_sampling_constant_groups_stay(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path), reward_fn=ConstantReward())
    trainer.step = 1
    groups, stats = trainer.collect_groups()
    assert len(groups) == 2 and stats["dapo/dropped_groups"] == 0 and stats["dapo/rounds"] == 1


@pytest.mark.parametrize("overlong_filter", [False, True])
def test_overlong_filtering_masks_truncated_responses(tmp_path, overlong_filter):
    trainer = GRPOTrainer(make_cfg(tmp_path, f"dapo.overlong_filter={str(overlong_filter).lower()}"),
                          reward_fn=TextHashReward())
    trainer.step = 1
    groups, _ = trainer.collect_groups()
    batch = trainer.build_batch(groups)
    completions = [c for g in groups for c in g.completions]
    truncated = torch.tensor([c.finish_reason == "length" for c in completions])
    assert truncated.any()  # a random model rarely stops within 8 tokens
    lengths = torch.tensor([len(c.token_ids) for c in completions])
    rows_in_loss = batch.response_mask.sum(-1)
    expected = torch.where(truncated & overlong_filter, torch.zeros_like(lengths), lengths)
    assert torch.equal(rows_in_loss.long(), expected)


def test_soft_overlong_punishment_lowers_long_responses_rewards(tmp_path):
    trainer = GRPOTrainer(make_cfg(tmp_path, "dapo.overlong_buffer=4", "dapo.overlong_penalty=0.5"),
                          reward_fn=ConstantReward())
    trainer.step = 1
    for g in trainer.collect_groups()[0]:
        for c, r in zip(g.completions, g.rewards):
            # limit 8, buffer 4: 1.0 up to 4 tokens, then down by 0.5 * (len - 4) / 4
            assert r == pytest.approx(1.0 - 0.5 * max(0, len(c.token_ids) - 4) / 4)


@pytest.mark.parametrize("clip_high, moves", [(0.2, False), (0.28, True)])
def test_clip_higher_lets_positive_advantages_push_ratio_further(tmp_path, clip_high, moves):
    trainer = GRPOTrainer(make_cfg(tmp_path, f"algorithm.clip_high={clip_high}"), reward_fn=TextHashReward())
    trainer.step = 1
    batch = trainer.build_batch(trainer.collect_groups()[0])
    index = torch.arange(batch.input_ids.shape[0])
    with torch.no_grad():
        logp = trainer.logprobs(trainer.model, batch, index)[0]
    old = logp - math.log(1.25)  # every token's ratio is 1.25, between 1.2 and 1.28
    advantages = batch.response_mask.clone()  # +1 on every token
    stats = trainer.update_policy(batch, old, None, advantages)
    assert (stats["actor/grad_norm"] > 0) == moves
    assert (stats["actor/clip_frac_high"] == pytest.approx(1.0)) != moves


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_update_does_not_depend_on_micro_batch_size(tmp_path, mode):
    grads = []
    for micro in (8, 2):
        trainer = GRPOTrainer(make_cfg(tmp_path / str(micro), f"train.micro_batch_size={micro}",
                                       f"algorithm.loss_agg_mode={mode}"), reward_fn=TextHashReward())
        trainer.train()
        # One update: the gradients left after it are the whole batch's, summed over micro-batches.
        # (Comparing weights after Adam's first step would not do: that step is ~lr * sign(grad),
        # blind to a wrong loss scale, and turns fp noise in near-zero gradients into full moves.)
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-7, msg=k)


def _one_step_grads(out, *overrides):
    trainer = GRPOTrainer(make_cfg(out, *overrides), reward_fn=TextHashReward())
    trainer.train()
    return trainer, {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def test_gmpo_policy_loss_is_selected_by_config(tmp_path, monkeypatch):
    from rl_reason.algorithms import POLICY_LOSSES

    calls = []
    gmpo_fn = POLICY_LOSSES.get("gmpo")
    monkeypatch.setitem(POLICY_LOSSES._table, "gmpo", lambda **kw: calls.append(1) or gmpo_fn(**kw))
    _, gmpo_grads = _one_step_grads(tmp_path / "gmpo", "algorithm.policy_loss=gmpo", "algorithm.loss_agg_mode=seq-mean-token-mean")
    assert calls and gmpo_grads
    _, ppo_grads = _one_step_grads(tmp_path / "ppo", "algorithm.loss_agg_mode=seq-mean-token-mean")
    # on-policy (ratio 1) GMPO's gradient is -A_i * mean_t grad logp_t: PPO's under seq-mean-token-mean
    for k in gmpo_grads:
        torch.testing.assert_close(gmpo_grads[k], ppo_grads[k], rtol=1e-4, atol=1e-7, msg=k)


@pytest.mark.parametrize("micro", [8, 2])
def test_shared_prompt_forward_gives_the_unshared_gradients(tmp_path, micro):
    """Whole groups per micro-batch (8) and groups split across micro-batches (2)."""
    _, shared = _one_step_grads(tmp_path / "shared", f"train.micro_batch_size={micro}")
    _, full = _one_step_grads(tmp_path / "full", f"train.micro_batch_size={micro}", "train.share_prompt_forward=false")
    assert shared.keys() == full.keys() and shared
    for k in shared:
        torch.testing.assert_close(shared[k], full[k], rtol=1e-4, atol=1e-7, msg=k)


def test_grouped_permutation_keeps_groups_together_and_shuffles_them():
    group_ids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    orders = [grouped_permutation(group_ids, torch.Generator().manual_seed(seed)) for seed in range(5)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(12))
        runs = group_ids[order].view(4, 3)
        assert (runs == runs[:, :1]).all()  # each block of 3 is one group
    assert len({tuple(group_ids[o].tolist()) for o in orders}) > 1


def test_gradient_checkpointing_recomputes_layers_and_keeps_the_gradients(tmp_path, monkeypatch):
    """transformers checkpoints only in training mode: the trainer must train there (dropout off)."""
    _, plain = _one_step_grads(tmp_path / "plain")
    trainer = GRPOTrainer(make_cfg(tmp_path / "gc", "train.gradient_checkpointing=true"), reward_fn=TextHashReward())
    # Count the first layer's MLP forwards (module hooks do not fire in the backward recompute).
    mlp = trainer.model.get_decoder().layers[0].mlp
    calls, forward = [], type(mlp).forward

    def counting_forward(self, *args, **kwargs):
        if self is mlp:
            calls.append(torch.is_grad_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(mlp), "forward", counting_forward)
    trainer.train()
    checkpointed = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert trainer.model.training and trainer.model.get_decoder().gradient_checkpointing
    # forward passes with grad: one for the single micro-batch, one recompute in backward
    assert calls.count(True) == 2
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=1e-4, atol=1e-7, msg=k)


RUN_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from rl_reason.config import load_config
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig
from tests.trainers.test_grpo import TextHashReward
GRPOTrainer(load_config(GRPOConfig, sys.argv[1]), reward_fn=TextHashReward()).train()
"""


def _run(args, hash_seed="0"):
    # Each run its own process (nothing cached between runs) with its own string-hash seed: set
    # and dict orders of strings must not reach the results.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc):
    assert proc.wait(timeout=900) == 0, proc.stderr.read().decode()[-3000:]


def _recipe(out):
    """6 steps with dynamic sampling (so the carried-group buffer is used), a checkpoint every 2,
    sampled held-out evals (pass@2 at temperature 1) before step 1, at 3 and 6, every step's
    rollouts in samples.jsonl."""
    import yaml

    from rl_reason.config import to_dict

    cfg = make_cfg(out, "train.steps=6", "checkpoint.every=2", "dapo.dynamic_sampling=true",
                   "train.prompts_per_step=3", "train.mini_batches=3", "train.micro_batch_size=2", "train.lr=1e-3",
                   "data.eval=arithmetic:heldout", "data.eval_limit=3", "eval.every=3", "eval.n=2", "eval.ks=[1,2]",
                   "eval.temperature=1.0", "log.samples_every=1")
    path = Path(f"{out}.yaml")
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return [str(path)]


def is_wall_clock(name):
    """The metrics that measure elapsed time, the only ones two runs may differ in: phase timers
    (``time/<phase>``, ``time/step``), throughput (``perf/tokens_per_s`` = tokens / ``time/step``)
    and the sandbox's wait for a free slot (``sandbox/slot_wait_s_mean``)."""
    return name.startswith(("time/", "perf/tokens_per_s", "sandbox/slot_wait_s"))


def assert_same_run(a: Path, b: Path, steps: int) -> None:
    """Two run folders hold the same records bit for bit: metrics (all but wall-clock fields),
    rollout samples, held-out eval samples and the final weights."""
    rows_a, rows_b = read_jsonl_records(a / "metrics.jsonl"), read_jsonl_records(b / "metrics.jsonl")
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == list(range(steps + 1))
    timing = {k for r in rows_a for k in r if is_wall_clock(k)}
    assert {"time/step", "time/generate", "time/update", "perf/tokens_per_s"} <= timing
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if not is_wall_clock(k)} == {k: v for k, v in rb.items() if not is_wall_clock(k)}
    assert read_jsonl_records(a / "samples.jsonl") == read_jsonl_records(b / "samples.jsonl")
    assert sorted({r["step"] for r in read_jsonl_records(a / "samples.jsonl")}) == list(range(1, steps + 1))
    evals = sorted(p.name for p in (a / "eval").iterdir())
    assert evals == sorted(p.name for p in (b / "eval").iterdir()) and len(evals) == 3
    for name in evals:
        assert read_jsonl_records(a / "eval" / name / "samples.jsonl") == read_jsonl_records(b / "eval" / name / "samples.jsonl")
    final = Path("checkpoints") / f"step_{steps:06d}" / "model" / "model.safetensors"
    assert (a / final).read_bytes() == (b / final).read_bytes()


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "straight"
    _finish(_run(_recipe(out)))
    return out


@pytest.mark.slow
def test_two_runs_of_one_recipe_and_seed_write_identical_records(straight_run, tmp_path):
    _finish(_run(_recipe(tmp_path / "again"), hash_seed="1"))
    assert_same_run(straight_run, tmp_path / "again", 6)
    rows = read_jsonl_records(straight_run / "metrics.jsonl")
    assert any(r["dapo/carried_in"] > 0 for r in rows[1:]), "the run should exercise the carried-group buffer"
    assert len({r["reward/mean"] for r in rows[1:]}) > 1  # not trivially constant


@pytest.mark.slow
def test_resume_after_kill_9_matches_uninterrupted_run(straight_run, tmp_path):
    """Killed during step 4, after step 3 logged its metrics, samples and eval: the resumed run
    goes back to the step-2 checkpoint and does steps 3 and 4 again, its records too."""
    run_dir = tmp_path / "killed"
    victim = _run(_recipe(run_dir))
    deadline = time.time() + 900

    def logged_steps():
        path = run_dir / "metrics.jsonl"
        return [r["step"] for r in read_jsonl_records(path)] if path.exists() else []

    while 3 not in logged_steps():
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert logged_steps() == [0, 1, 2, 3] and (run_dir / "eval" / "step_000003").is_dir()
    assert 3 in {r["step"] for r in read_jsonl_records(run_dir / "samples.jsonl")}
    assert CheckpointManager(run_dir / "checkpoints").steps() == [2]

    _finish(_run(_recipe(run_dir), hash_seed="2"))  # resume=auto
    assert_same_run(straight_run, run_dir, 6)


def test_reinforce_pp_whitens_over_loss_tokens_only():
    """Rows of 2 and 1 response tokens (padding after them) and an overlong-filtered row: the
    batch whitening of REINFORCE++ sees the 3 loss tokens, returns [1, 1] and [0], so mean 2/3
    and unbiased variance 1/3; padding or the filtered row's score would shift both."""
    from rl_reason.trainers.grpo import Batch

    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.cfg = load_config(GRPOConfig, None, ["algorithm.advantage=reinforce_pp"])
    trainer.teacher = None  # no distillation
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ids = torch.zeros(3, 5, dtype=torch.long)
    batch = Batch(ids, torch.ones_like(ids), mask, None, torch.tensor([1.0, 0.0, 5.0]), torch.tensor([0, 0, 1]))
    adv = trainer.advantages(batch)
    scale = 1 / math.sqrt(1 / 3 + trainer.cfg.dapo.std_eps)
    expected = torch.tensor([[scale / 3, scale / 3, 0.0], [-2 * scale / 3, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(adv, expected)


def test_every_registered_advantage_estimator_but_gae_is_selectable_in_a_recipe(tmp_path):
    from rl_reason.algorithms import ADVANTAGES

    for name in ADVANTAGES.names():
        if name != "gae":  # PPO's, over a critic
            assert make_cfg(tmp_path, f"algorithm.advantage={name}").algorithm.advantage == name


@pytest.mark.parametrize("extra", [
    (), ("train.share_prompt_forward=false",), ("train.micro_batch_size=4", "algorithm.kl_coef=0.1"),
    ("train.gradient_checkpointing=true",),
])
def test_packed_update_gives_the_padded_update(tmp_path, monkeypatch, extra):
    """train.pack_tokens on, with or without shared prompts: the same gradients and loss as
    padded rows, in the on-policy update and (a KL reference, two micro-batches) through the
    no-grad reference log-prob pass."""
    from rl_reason.models import logprobs

    packings, pack_layout = [], logprobs.pack_layout
    spy = lambda *args: packings.append(pack_layout(*args)) or packings[-1]  # noqa: E731
    monkeypatch.setattr(logprobs, "pack_layout", spy)
    packed, packed_grads = _one_step_grads(tmp_path / "packed", "train.pack_tokens=400", *extra)
    monkeypatch.undo()
    # several sequences share a packed row, in every forward (reference, then update)
    assert packings and all(max(map(len, p.rows)) > 1 for p in packings)
    assert len(packings) == (4 if "algorithm.kl_coef=0.1" in extra else 1)
    sharing = "train.share_prompt_forward=false" not in extra  # each prompt packed once, own mask
    assert all((p.attention is not None) == sharing for p in packings)
    padded, padded_grads = _one_step_grads(tmp_path / "padded", *extra)
    assert packed_grads.keys() == padded_grads.keys() and packed_grads
    for k in packed_grads:
        torch.testing.assert_close(packed_grads[k], padded_grads[k], rtol=1e-4, atol=1e-7, msg=k)
    rows = [read_jsonl_records(Path(t.cfg.output_dir) / "metrics.jsonl")[-1] for t in (packed, padded)]
    assert rows[0]["actor/loss"] == pytest.approx(rows[1]["actor/loss"], rel=1e-5, abs=1e-7)

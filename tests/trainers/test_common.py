import json
import random

import pytest
import torch

from rl_reason.io import read_jsonl_records
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.common.metrics import MetricsLogger, rewind_run_logs, truncate_metrics
from rl_reason.trainers.common.sampler import PromptSampler
from rl_reason.trainers.common.timers import PhaseTimers


def test_sampler_covers_each_epoch_once_and_resumes_across_epochs():
    straight = PromptSampler(10, seed=3)
    draws = [straight.take(4) for _ in range(5)]  # 20 indices: two full epochs
    flat = [i for d in draws for i in d]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # a fresh permutation per epoch
    resumed_src = PromptSampler(10, seed=3)
    for _ in range(2):
        resumed_src.take(4)
    resumed = PromptSampler(10, seed=3)
    resumed.load_state_dict(resumed_src.state_dict())
    assert [resumed.take(4) for _ in range(3)] == draws[2:]
    with pytest.raises(ValueError, match="seed 3"):
        PromptSampler(10, seed=4).load_state_dict(resumed_src.state_dict())


def test_timers_accumulate_per_phase_and_reset():
    timers = PhaseTimers()
    for _ in range(2):
        with timers("rollout"):
            sum(range(10000))
    with timers("update"):
        pass
    out = timers.pop()
    assert set(out) == {"time/rollout", "time/update"} and out["time/rollout"] > 0
    assert timers.pop() == {}


def test_metrics_jsonl_and_truncation_for_resume(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=True)
    for step in range(1, 5):
        logger.log(step, {"reward/mean": step / 10, "bad": float("nan")})
    logger.close()
    rows = read_jsonl_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[0]["bad"] is None
    assert list((tmp_path / "tensorboard").iterdir())
    truncate_metrics(tmp_path / "metrics.jsonl", 2)
    assert [r["step"] for r in read_jsonl_records(tmp_path / "metrics.jsonl")] == [1, 2]


def test_rewinding_a_run_folder_drops_the_records_of_later_steps(tmp_path):
    for name in ("metrics.jsonl", "samples.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps({"step": s, "x": s}) + "\n" for s in (0, 1, 1, 2, 3)))
    for step in (0, 2, 3, 10):
        (tmp_path / "eval" / f"step_{step:06d}").mkdir(parents=True)
        (tmp_path / "eval" / f"step_{step:06d}" / "samples.jsonl").write_text("{}\n")
    (tmp_path / "eval" / "notes").mkdir()  # not a step's folder: kept
    rewind_run_logs(tmp_path, 2)
    for name in ("metrics.jsonl", "samples.jsonl"):
        assert [r["step"] for r in read_jsonl_records(tmp_path / name)] == [0, 1, 1, 2]
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["notes", "step_000000", "step_000002"]
    rewind_run_logs(tmp_path, -1)  # starting over
    assert read_jsonl_records(tmp_path / "metrics.jsonl") == read_jsonl_records(tmp_path / "samples.jsonl") == []
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["notes"]


def _tiny_llama(seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)


def test_checkpoint_roundtrip_keep_last_and_transformers_load(tmp_path):
    from transformers import AutoModelForCausalLM

    model = _tiny_llama(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    for step in (1, 2, 3):
        model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
        opt.step()
        sched.step()
        random.random()
        manager.save(step, model, None, opt, sched, {"sampler": {"position": step}, "carried": [step]})
    assert manager.steps() == [2, 3] and manager.latest().name == "step_000003"
    expected_next = (random.random(), torch.rand(1))
    # A fresh model/optimizer restored from the checkpoint equals the saved one, RNG included.
    fresh = _tiny_llama(1)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_sched = torch.optim.lr_scheduler.LambdaLR(fresh_opt, lambda s: 0.5 ** s)
    state = CheckpointManager.load(manager.latest(), fresh, fresh_opt, fresh_sched)
    assert state["step"] == 3 and state["carried"] == [3]
    assert (random.random(), torch.rand(1)) == expected_next
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert fresh_sched.get_last_lr() == sched.get_last_lr()
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    hf = AutoModelForCausalLM.from_pretrained(manager.latest() / "model")
    assert torch.allclose(hf(torch.tensor([[1, 2]])).logits, model(torch.tensor([[1, 2]])).logits)


def test_checkpoint_save_is_atomic(tmp_path):
    model = _tiny_llama(0)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, model, None, opt, sched, {})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        manager.save(2, model, None, opt, sched, {"carried": Unpicklable()})
    assert manager.steps() == [1]  # the half-written step 2 is not a checkpoint
    assert json.loads((manager.latest() / "model" / "config.json").read_text())["model_type"] == "llama"

"""Trainer-level tests of the post-training trainers on tiny random models (no download)."""

import json
import math
from pathlib import Path

import pytest
import torch

from rl_reason.cli.train import load_train_config
from rl_reason.config import ConfigError, load_config
from rl_reason.models import tiny_model
from rl_reason.models.heads import load_scalar_model, scalar_model_from_lm, sequence_scores, token_values
from rl_reason.trainers.post_config import DPOConfig, KTOConfig, PPOConfig, PRMConfig, RewardModelConfig, SFTConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("recipe,trainer,cls", [("rm.yaml", "reward_model", RewardModelConfig),
                                                ("ppo_rm.yaml", "ppo", PPOConfig),
                                                ("dpo_verified.yaml", "dpo", DPOConfig),
                                                ("sft.yaml", "sft", SFTConfig),
                                                ("prm.yaml", "prm", PRMConfig)])
def test_post_training_recipes_parse_and_validate(recipe, trainer, cls):
    name, cfg = load_train_config(str(RECIPES / recipe), [])
    assert name == trainer and isinstance(cfg, cls)


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="no reward"):
        PPOConfig.__call__ if False else load_config(PPOConfig, None, ["reward_model.path=", "critic.init=actor"])
    with pytest.raises(ConfigError, match="pairs.data"):
        load_config(DPOConfig, None, ["data.train=x.jsonl", "iterations=2"])
    with pytest.raises(ConfigError, match="micro_batch_size"):
        load_config(RewardModelConfig, None, ["data.train=x.jsonl", "train.batch_size=6", "train.micro_batch_size=4"])
    with pytest.raises(ConfigError, match="^iterations must be >= 1, got 0$"):
        load_config(DPOConfig, None, ["data.train=x.jsonl", "iterations=0"])


@pytest.mark.parametrize("cls, source", [(RewardModelConfig, "pairs"), (PRMConfig, "label"), (DPOConfig, "pairs"),
                                         (KTOConfig, "pairs"), (SFTConfig, "rejection_sampling")])
def test_every_offline_config_runs_its_bases_checks(cls, source, monkeypatch):
    """The run configs' checks run for every class of the hierarchy: each offline trainer needs
    data.train or the prompts of the section it mints rows from, and every run needs a resume mode."""
    from rl_reason.trainers.grpo_config import ModelConfig

    with pytest.raises(ConfigError, match=rf"^data.train \(a data file or hub id\) or {source}.data \(prompts"):
        load_config(cls, None, [])
    assert getattr(load_config(cls, None, [f"{source}.data=arithmetic:train"]), source).data == "arithmetic:train"
    with pytest.raises(ConfigError, match="^resume must be"):
        load_config(cls, None, ["data.train=x.jsonl", "resume="])
    # The reward-model trainers load a full-precision head model: a 4-bit request is refused, not ignored.
    monkeypatch.setattr(ModelConfig, "_check_4bit", lambda self: None)  # the CUDA/bitsandbytes checks pass
    refused = cls in (RewardModelConfig, PRMConfig)
    try:
        load_config(cls, None, ["data.train=x.jsonl", "model.load_in_4bit=true", "model.lora.r=8"])
    except ConfigError as e:
        assert refused and "model.load_in_4bit: the" in str(e) and "full precision" in str(e)
    else:
        assert not refused


def _pairs(path: Path, n: int = 24) -> Path:
    # A learnable preference: chosen answers say "yes", rejected ones "no".
    rows = [{"prompt": f"question {i}?", "chosen": f"yes {i % 5}", "rejected": f"no {i % 5}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _base(tmp_path, cls, extra):
    return load_config(cls, None, [f"output_dir={tmp_path / 'run'}", "model.max_prompt_tokens=16", "model.max_seq_len=32",
                                   "log.tensorboard=false", "log.progress=false", "seed=0", *extra])


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _records(run_dir: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock fields: what two runs of one recipe and seed share bit for bit."""
    from tests.trainers.test_grpo import is_wall_clock

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows and any(is_wall_clock(k) for r in rows for k in r)
    return [{k: v for k, v in r.items() if not is_wall_clock(k)} for r in rows]


def test_scalar_head_reads_last_attended_token_and_values_align():
    lm, tok = tiny_model(seed=1)
    rm = scalar_model_from_lm(lm)
    ids = torch.tensor([[0, 5, 6, 7, 0], [4, 5, 6, 7, 8]])
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    scores = sequence_scores(rm, ids, mask)
    # Row 0 alone, unpadded: the same score (left and right padding do not change it).
    alone = sequence_scores(rm, ids[:1, 1:4], mask[:1, 1:4])
    torch.testing.assert_close(scores[0], alone[0], rtol=1e-5, atol=1e-5)
    values = token_values(rm, ids, mask, response_length=2)
    assert values.shape == (2, 2) and values[0, 1] == 0  # padding position


def test_reward_model_learns_pairs_saves_and_resumes_exactly(tmp_path):
    from rl_reason.trainers.reward_model import RewardModelTrainer

    data = _pairs(tmp_path / "pairs.jsonl", 40)
    extra = [f"data.train={data}", "data.eval_fraction=0.25", "train.steps=20", "train.batch_size=8",
             "train.micro_batch_size=4", "train.lr=3e-3", "eval_every=20", "checkpoint.every=2"]
    lm, tok = tiny_model(seed=0)
    cfg = _base(tmp_path, RewardModelConfig, extra)
    t = RewardModelTrainer(cfg, scalar_model_from_lm(lm), tok)
    before = t.evaluate()["eval/accuracy"]
    start = _params(t.model)
    t.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
    assert rows[-1]["eval/accuracy"] == 1.0 and before < 1.0
    assert any(not torch.equal(start[k], v) for k, v in t.model.state_dict().items())
    final = t.save_final()
    loaded, _ = load_scalar_model(final)
    torch.testing.assert_close(_params(loaded)["score.weight"], _params(t.model)["score.weight"])

    # Resume: 2 steps with a checkpoint, then a new trainer continues to 4 == 4 steps straight.
    short = [*extra, "train.steps=4", "eval_every=2"]
    straight = RewardModelTrainer(_base(tmp_path / "a", RewardModelConfig, short), scalar_model_from_lm(tiny_model(seed=0)[0]), tok)
    straight.train()
    cfg2 = _base(tmp_path / "b", RewardModelConfig, short)
    RewardModelTrainer(cfg2, scalar_model_from_lm(tiny_model(seed=0)[0]), tok).train(steps=2)
    t2 = RewardModelTrainer(cfg2, scalar_model_from_lm(tiny_model(seed=0)[0]), tok)
    t2.train()
    assert t2.step == 4
    for k, v in _params(straight.model).items():
        assert torch.equal(t2.model.state_dict()[k], v), k  # bit for bit
    assert _records(tmp_path / "a" / "run") == _records(tmp_path / "b" / "run")


class _RecordingEngine:
    """Delegates to the trainer's real train engine and records the calls."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def __getattr__(self, name):
        attr = getattr(self.engine, name)
        if name in ("zero_grad", "backward", "step"):
            def recorded(*args):
                self.calls.append(name)
                return attr(*args)
            return recorded
        return attr


def test_offline_loop_steps_through_the_distributed_train_engine(tmp_path):
    from rl_reason.distributed.engine import TorchEngine
    from rl_reason.trainers.reward_model import RewardModelTrainer

    data = _pairs(tmp_path / "pairs.jsonl", 12)
    extra = [f"data.train={data}", "train.steps=2", "train.batch_size=4", "train.micro_batch_size=2", "train.lr=1e-3",
             "train.warmup_steps=3", "eval_every=0", "checkpoint.every=1"]
    lm, tok = tiny_model(seed=0)
    t = RewardModelTrainer(_base(tmp_path, RewardModelConfig, extra), scalar_model_from_lm(lm), tok)
    assert isinstance(t.train_engine, TorchEngine) and t.train_engine.module is t.model
    t.train_engine = recorder = _RecordingEngine(t.train_engine)
    start = _params(t.model)
    t.train()
    # One zero_grad, batch_size / micro_batch_size backward passes and one step per update.
    assert recorder.calls == ["zero_grad", "backward", "backward", "step"] * 2
    assert any(not torch.equal(start[k], v) for k, v in t.model.state_dict().items())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # The engine's LR scheduler: after update u the rate for update u + 1 is logged, (u + 1) / 3 of lr.
    assert [r["train/lr"] for r in rows] == pytest.approx([2e-3 / 3, 1e-3])
    assert (tmp_path / "run" / "checkpoints" / "step_000002" / "optimizer.pt").is_file()
    cfg = _base(tmp_path, SFTConfig, ["data.train=x.jsonl", "distributed.engine=deepspeed"])
    assert cfg.distributed.engine == "deepspeed"


@pytest.mark.parametrize("loss", ["dpo", "ipo", "simpo", "orpo"])
def test_dpo_family_step_changes_policy_with_finite_losses(tmp_path, loss):
    from rl_reason.trainers.dpo import DPOTrainer
    from rl_reason.trainers.pair_data import PAIR_KEYS, load_rows

    rows = load_rows(str(_pairs(tmp_path / "pairs.jsonl", 8)), PAIR_KEYS)
    cfg = _base(tmp_path, DPOConfig, [f"data.train={tmp_path / 'pairs.jsonl'}", f"loss.name={loss}", "train.steps=2",
                                      "train.batch_size=4", "train.micro_batch_size=2", "train.lr=1e-3", "eval_every=0"])
    lm, tok = tiny_model(seed=0)
    t = DPOTrainer(cfg, lm, tok, rows[:6], rows[6:])
    start = _params(lm)
    t.train()
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(math.isfinite(m["train/loss"]) for m in metrics)
    assert "train/rewards/accuracy" in metrics[0] and "train/logps/chosen" in metrics[0]
    assert any(not torch.equal(start[k], v) for k, v in lm.state_dict().items())


def test_dpo_reference_is_cached_initial_policy_and_training_raises_margin(tmp_path):
    from rl_reason.trainers.dpo import DPOTrainer
    from rl_reason.trainers.pair_data import PAIR_KEYS, load_rows

    rows = load_rows(str(_pairs(tmp_path / "pairs.jsonl", 16)), PAIR_KEYS)
    cfg = _base(tmp_path, DPOConfig, [f"data.train={tmp_path / 'pairs.jsonl'}", "train.steps=15", "train.batch_size=8",
                                      "train.micro_batch_size=8", "train.lr=2e-3", "eval_every=15"])
    lm, tok = tiny_model(seed=0)
    t = DPOTrainer(cfg, lm, tok, rows[:12], rows[12:])
    at_start = t.evaluate()
    # Policy == reference before any update: implicit rewards, margin and loss are exactly neutral.
    assert at_start["eval/rewards/margin"] == pytest.approx(0.0, abs=1e-5)
    assert at_start["eval/loss"] == pytest.approx(math.log(2), abs=1e-5)
    ref_before = [r["ref_chosen_logps"] for r in t.train_rows]
    t.train()
    assert [r["ref_chosen_logps"] for r in t.train_rows] == ref_before  # cached, never recomputed
    after = t.evaluate()
    assert after["eval/rewards/margin"] > 0.1 and after["eval/rewards/accuracy"] == 1.0


def test_sft_masks_all_but_assistant_tokens_and_learns(tmp_path):
    from rl_reason.trainers.sft import SFTTrainer, pack, tokenize_example

    lm, tok = tiny_model(seed=0)
    row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
                        {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}
    ids, labels = tokenize_example(row, tok)
    assert ids == tok(tok.apply_chat_template(row["messages"], tokenize=False), add_special_tokens=False)["input_ids"]
    trained = tok.decode([i for i, m in zip(ids, labels) if m])
    assert "4" in trained and "6" in trained and "2+2" not in trained and "user" not in trained
    ids2, labels2 = tokenize_example({"prompt": "1+1=", "completion": "2"}, tok)
    assert labels2[-1] == 1 and ids2[-1] == tok.eos_token_id and labels2[0] == 0
    blocks = pack([(ids, labels), (ids2, labels2)], 8)
    assert [t for b in blocks for t in b[0]] == ids + ids2 and all(len(b[0]) <= 8 for b in blocks)

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for _ in range(8)))
    cfg = _base(tmp_path, SFTConfig, [f"data.train={data}", "data.eval_fraction=0.25", "train.steps=10",
                                      "train.batch_size=4", "train.micro_batch_size=2", "train.lr=3e-3", "eval_every=10"])
    t = SFTTrainer(cfg, lm, tok, [row] * 8)
    before = t.evaluate()["eval/loss"]
    t.train()
    assert t.evaluate()["eval/loss"] < 0.5 * before




def _saved_tiny(tmp_path):
    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    rm = scalar_model_from_lm(tiny_model(seed=1)[0])
    torch.nn.init.normal_(rm.score.weight, std=0.5)  # a reward that varies between responses
    rm.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    return tmp_path / "policy", tmp_path / "rm"


def test_ppo_step_updates_actor_and_critic_logs_metrics_and_resumes(tmp_path):
    from rl_reason.trainers.ppo import PPOTrainer

    policy, rm = _saved_tiny(tmp_path)
    args = [f"output_dir={tmp_path / 'run'}", f"model.name={policy}", "model.max_prompt_tokens=200",
            "model.max_seq_len=256", "data.train=arithmetic:train", "data.train_limit=16", "rollout.n=2",
            "rollout.max_new_tokens=8", "train.prompts_per_step=2", "train.mini_batches=2", "train.micro_batch_size=2",
            "train.ppo_epochs=2", "train.lr=1e-3", "critic.lr=1e-3", "algorithm.kl_coef=0.1", f"reward_model.path={rm}",
            "reward_model.verifier_weight=1.0", "reward.verifier_workers=1", "log.tensorboard=false", "log.progress=false",
            "checkpoint.every=1", "train.steps=2"]
    cfg = load_config(PPOConfig, None, args)
    t = PPOTrainer(cfg)
    actor0, critic0 = _params(t.actor.model), _params(t.critic.module)
    assert t.actor.ref_model is not None and not any(p.requires_grad for p in t.reward.rm.parameters())
    t.train()
    assert any(not torch.equal(actor0[k], v) for k, v in t.actor.model.state_dict().items())
    assert any(not torch.equal(critic0[k], v) for k, v in t.critic.module.state_dict().items())
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for key in ("critic/value_loss", "critic/returns_mean", "rm/score_mean", "verifier/score_mean", "actor/loss",
                "ppo/kl_in_reward"):
        assert all(r.get(key) is not None and math.isfinite(r[key]) for r in rows), key
    assert "critic/explained_variance" in rows[0]

    t2 = PPOTrainer(load_config(PPOConfig, None, [*args, "train.steps=3"]))
    t2.resume()
    assert t2.step == 2
    for k, v in t.critic.module.state_dict().items():
        torch.testing.assert_close(t2.critic.module.state_dict()[k], v)


def test_score_cli_scores_pairs_with_a_saved_reward_model(tmp_path, capsys):
    from rl_reason.cli.main import main

    _, rm = _saved_tiny(tmp_path)
    data = _pairs(tmp_path / "pairs.jsonl", 4)
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", str(rm), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and all(math.isfinite(r["chosen_score"]) and math.isfinite(r["rejected_score"]) for r in rows)
    assert "pairwise accuracy" in capsys.readouterr().err
    model, tok = load_scalar_model(rm)
    from rl_reason.trainers.reward_model import score_texts

    direct = score_texts(model, tok, [rows[0]["prompt"]], [rows[0]["chosen"]], 64, 64)
    assert direct[0].item() == pytest.approx(rows[0]["chosen_score"], abs=1e-5)


def test_pairs_cli_samples_grades_and_writes_pairs_file(tmp_path, capsys):
    from rl_reason.cli.main import main

    policy, _ = _saved_tiny(tmp_path)
    out = tmp_path / "pairs"
    assert main(["pairs", "--model", str(policy), "--data", "arithmetic:train", "--limit", "2", "--n", "3",
                 "--max-new-tokens", "4", "--out", str(out), "--quiet"]) == 0
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all("correct" in s and "status" in s for s in samples)
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    # A random tiny model answers nothing correctly, so no prompt has a pair; what is written agrees.
    assert len(pairs) == sum(1 for pid in {s["id"] for s in samples}
                             if {s["correct"] for s in samples if s["id"] == pid} == {True, False})
    assert f"{len(pairs)} pairs" in capsys.readouterr().out


@pytest.mark.slow
def test_two_dpo_runs_of_one_recipe_and_seed_write_identical_records(tmp_path):
    """`rl-reason train` twice in fresh processes (different string-hash seeds): identical
    metrics but for wall-clock fields, identical held-out task accuracy and final weights."""
    import os
    import subprocess
    import sys

    import yaml

    data = _pairs(tmp_path / "pairs.jsonl", 16)
    repo = Path(__file__).resolve().parents[2]
    for name, hash_seed in (("a", "0"), ("b", "1")):
        recipe = {"trainer": "dpo", "output_dir": str(tmp_path / name), "seed": 3,
                  "model": {"name": "tiny:llama", "max_prompt_tokens": 16, "max_seq_len": 32},
                  "data": {"train": str(data), "eval_fraction": 0.25}, "loss": {"name": "dpo"},
                  "train": {"steps": 4, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3}, "eval_every": 2,
                  "task_eval": {"data": "arithmetic:heldout", "limit": 3, "template": "base_boxed", "max_new_tokens": 8},
                  "checkpoint": {"every": 2}, "log": {"tensorboard": False, "progress": False}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
        env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-m", "rl_reason", "train", "--config", str(tmp_path / f"{name}.yaml")],
                              cwd=repo, env=env, capture_output=True, timeout=900)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    a, b = tmp_path / "a", tmp_path / "b"
    records = _records(a)
    assert records == _records(b) and [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert len({r["train/loss"] for r in records[1:]}) > 1  # it trained
    assert (a / "task_eval.jsonl").read_text() == (b / "task_eval.jsonl").read_text()
    assert (a / "final" / "model.safetensors").read_bytes() == (b / "final" / "model.safetensors").read_bytes()

"""LoRA through peft on tiny random models: every trainer trains only its adapters, the reference
is the base with the adapter off (no second copy), checkpoints are the adapter alone and resume,
``rl-reason export --merge`` writes a plain model whose log-probs are the trainer's."""

import json
import math

import pytest
import torch

from rl_reason.cli.main import main as cli_main
from rl_reason.config import ConfigError, load_config
from rl_reason.models import adapter_disabled, is_lora, load_model, tiny_model, token_logprobs
from rl_reason.trainers.grpo import GRPOTrainer
from rl_reason.trainers.grpo_config import GRPOConfig
from rl_reason.trainers.post_config import DPOConfig, PPOConfig, RewardModelConfig, SFTConfig
from tests.trainers.test_grpo import TextHashReward, make_cfg
from tests.trainers.test_post_train import _base, _pairs

LORA = ["model.lora.r=4", "model.lora.alpha=8"]


class VaryingReward(TextHashReward):
    def close(self):
        pass


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _changed(before, model):
    return {k for k, v in model.named_parameters() if not torch.equal(before[k], v)}


def _assert_only_adapters_trained(before, model, extra=(), changes=".lora_B."):
    """Only adapter weights (and ``extra`` modules) require grad or changed, and weights named
    ``changes`` did change (B: A gets no gradient while B is still 0)."""
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in k or any(e in k for e in extra) for k in trainable)
    changed = _changed(before, model)
    assert changed and changed <= trainable
    assert any(changes in k for k in changed)


def _sequences(tok, device="cpu"):
    """A left-padded prompt + right-padded response batch (the trainers' layout)."""
    from rl_reason.models import padded_batch

    prompts = [
        tok("2+2=", add_special_tokens=False)["input_ids"],
        tok("what is 7*6?", add_special_tokens=False)["input_ids"],
    ]
    responses = [
        tok("4, the answer", add_special_tokens=False)["input_ids"],
        tok("42", add_special_tokens=False)["input_ids"],
    ]
    return padded_batch(prompts, responses, pad_token_id=tok.pad_token_id)


def _logprobs(model, batch):
    ids, mask, R = batch
    with torch.no_grad():
        return token_logprobs(model, ids, mask, R)[0]


def test_4bit_base_is_a_config_error_on_cpu():
    with pytest.raises(ConfigError, match=r"model\.load_in_4bit .*CUDA"):
        load_config(GRPOConfig, None, ["model.load_in_4bit=true", *LORA])
    with pytest.raises(ConfigError, match=r"model\.load_in_4bit needs model\.lora\.r > 0"):
        load_config(GRPOConfig, None, ["model.load_in_4bit=true", "model.device=cuda"])
    with pytest.raises(ConfigError, match=r"model\.lora\.r must be >= 0"):
        load_config(SFTConfig, None, ["data.train=x.jsonl", "model.lora.r=-1"])
    with pytest.raises(ConfigError, match="all-linear alone"):
        load_config(GRPOConfig, None, ["model.lora.target_modules=all-linear,q_proj", *LORA])


@pytest.mark.parametrize("checkpointing", [False, True])
def test_grpo_lora_trains_adapters_only_and_the_reference_is_the_base(tmp_path, checkpointing):
    cfg = make_cfg(
        tmp_path,
        *LORA,
        "algorithm.kl_coef=0.1",
        "data.train_limit=4",
        "train.prompts_per_step=4",
        f"train.gradient_checkpointing={str(checkpointing).lower()}",
    )
    trainer = GRPOTrainer(cfg, reward_fn=TextHashReward())
    # No second model: the reference is the policy module itself, read with its adapter off.
    assert is_lora(trainer.model) and trainer.ref_model is trainer.model
    base, tok = tiny_model(seed=cfg.seed)
    batch = _sequences(tok)
    before = _snapshot(trainer.model)
    trainer.train()
    _assert_only_adapters_trained(before, trainer.model)
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(row["actor/kl"]) and row["actor/grad_norm"] > 0
    trained = _logprobs(trainer.model, batch)
    with adapter_disabled(trainer.model):
        reference = _logprobs(trainer.model, batch)
    torch.testing.assert_close(reference, _logprobs(base, batch), rtol=0, atol=1e-6)
    assert (trained - reference).abs().max() > 1e-4  # the adapter is on again outside the context


def test_grpo_lora_checkpoint_is_the_adapter_and_resumes_exactly(tmp_path):
    common = [*LORA, "data.train_limit=4", "train.prompts_per_step=4", "checkpoint.every=1"]
    straight = GRPOTrainer(make_cfg(tmp_path / "a", *common, "train.steps=2"), reward_fn=TextHashReward())
    straight.train()
    first = GRPOTrainer(make_cfg(tmp_path / "b", *common, "train.steps=1"), reward_fn=TextHashReward())
    first.train()
    model_dir = tmp_path / "b" / "checkpoints" / "step_000001" / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names and "model.safetensors" not in names
    adapter_bytes = (model_dir / "adapter_model.safetensors").stat().st_size
    full_bytes = sum(p.numel() * 4 for p in first.model.parameters())
    assert adapter_bytes < full_bytes / 5
    resumed = GRPOTrainer(make_cfg(tmp_path / "b", *common, "train.steps=2"), reward_fn=TextHashReward())
    resumed.resume()
    for k, v in first.model.named_parameters():  # the adapter came back, the base is the base
        torch.testing.assert_close(dict(resumed.model.named_parameters())[k], v, rtol=0, atol=0)
    resumed.train()
    for k, v in straight.model.named_parameters():
        torch.testing.assert_close(dict(resumed.model.named_parameters())[k], v, rtol=0, atol=1e-6)


def test_a_checkpoint_of_another_adapter_is_refused(tmp_path):
    from rl_reason.models.lora import load_adapter

    trainer = GRPOTrainer(make_cfg(tmp_path / "a", *LORA, "checkpoint.every=1"), reward_fn=TextHashReward())
    trainer.train()
    other = GRPOTrainer(
        make_cfg(tmp_path / "b", "model.lora.r=4", "model.lora.target_modules=q_proj"), reward_fn=TextHashReward()
    )
    with pytest.raises(ValueError, match="does not fit"):
        load_adapter(other.model, tmp_path / "a" / "checkpoints" / "step_000001" / "model")


def test_export_merge_writes_a_plain_model_with_the_trainers_logprobs(tmp_path, capsys):
    cfg = make_cfg(tmp_path / "run", *LORA, "train.lr=5e-2", "checkpoint.every=1", "model.name=tiny:qwen2")
    trainer = GRPOTrainer(cfg, reward_fn=TextHashReward())
    trainer.train()
    batch = _sequences(trainer.tokenizer)
    assert cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "merged"), "--merge"]) == 0
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged, tok = load_model(tmp_path / "merged")
    assert not is_lora(merged) and tok.pad_token_id == trainer.tokenizer.pad_token_id
    ours = _logprobs(trainer.model, batch)
    with adapter_disabled(trainer.model):
        assert (ours - _logprobs(trainer.model, batch)).abs().max() > 1e-4  # the adapter matters
    torch.testing.assert_close(_logprobs(merged, batch), ours, rtol=0, atol=1e-5)
    # Without --merge: the adapter folder as saved.
    assert cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "adapter")]) == 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    # Into a folder that holds files: refused in one line, nothing written.
    code = cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "adapter"), "--merge"])
    assert code == 2 and "already holds files" in capsys.readouterr().err


def test_export_of_a_full_fine_tune_is_the_checkpoints_hf_folder(tmp_path, capsys):
    trainer = GRPOTrainer(make_cfg(tmp_path / "run", "checkpoint.every=1"), reward_fn=TextHashReward())
    trainer.train()
    assert cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf"), "--checkpoint", "9"]) == 2
    assert "available: step_000001" in capsys.readouterr().err and not (tmp_path / "hf").exists()
    assert cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    exported, tok = load_model(tmp_path / "hf")
    batch = _sequences(tok)
    torch.testing.assert_close(_logprobs(exported, batch), _logprobs(trainer.model, batch), rtol=0, atol=0)


def test_sft_lora_trains_adapters_and_final_is_the_merged_model(tmp_path):
    from rl_reason.trainers.sft import SFTTrainer

    lm, tok = tiny_model(seed=0)
    row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    cfg = _base(
        tmp_path,
        SFTConfig,
        [
            "data.train=x.jsonl",
            "data.eval_fraction=0.25",
            "train.steps=3",
            "train.batch_size=4",
            "train.micro_batch_size=2",
            "train.lr=1e-2",
            "eval_every=0",
            *LORA,
        ],
    )
    t = SFTTrainer(cfg, lm, tok, [row] * 8)
    assert is_lora(t.model)
    before = _snapshot(t.model)
    t.train()
    _assert_only_adapters_trained(before, t.model)
    final = t.save_final()
    merged, _ = load_model(final)
    batch = _sequences(tok)
    torch.testing.assert_close(_logprobs(merged, batch), _logprobs(t.model, batch), rtol=0, atol=1e-5)


def test_dpo_lora_trains_adapters_with_the_base_as_reference(tmp_path):
    from rl_reason.trainers.dpo import DPOTrainer, response_logps
    from rl_reason.trainers.pair_data import PAIR_KEYS, load_rows

    rows = load_rows(str(_pairs(tmp_path / "pairs.jsonl", 8)), PAIR_KEYS)
    cfg = _base(
        tmp_path,
        DPOConfig,
        [
            f"data.train={tmp_path / 'pairs.jsonl'}",
            "train.steps=2",
            "train.batch_size=4",
            "train.micro_batch_size=2",
            "train.lr=1e-2",
            "eval_every=0",
            *LORA,
        ],
    )
    lm, tok = tiny_model(seed=0)
    t = DPOTrainer(cfg, lm, tok, rows[:6], rows[6:])
    before = _snapshot(t.model)
    t.train()
    _assert_only_adapters_trained(before, t.model)
    base, _ = tiny_model(seed=0)
    prompts, chosen = [r["prompt"] for r in rows[:6]], [r["chosen"] for r in rows[:6]]
    ref, _ = response_logps(base, tok, prompts, chosen, 16, 16, "cpu")
    assert [r["ref_chosen_logps"] for r in t.train_rows] == pytest.approx(ref.tolist(), abs=1e-5)
    with torch.no_grad(), adapter_disabled(t.model):
        off, _ = response_logps(t.model, tok, prompts, chosen, 16, 16, "cpu")
    torch.testing.assert_close(off, ref, rtol=0, atol=1e-5)


def test_reward_model_lora_trains_adapters_and_head_and_final_scores_the_same(tmp_path):
    from rl_reason.models.heads import load_scalar_model
    from rl_reason.trainers.reward_model import RewardModelTrainer, score_texts

    data = _pairs(tmp_path / "pairs.jsonl", 12)
    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "backbone")
    tok.save_pretrained(tmp_path / "backbone")
    cfg = _base(
        tmp_path,
        RewardModelConfig,
        [
            f"data.train={data}",
            f"model.name={tmp_path / 'backbone'}",
            "train.steps=3",
            "train.batch_size=4",
            "train.micro_batch_size=2",
            "train.lr=1e-2",
            "eval_every=0",
            "checkpoint.every=3",
            *LORA,
        ],
    )
    t = RewardModelTrainer(cfg)
    before = _snapshot(t.model)
    t.train()
    _assert_only_adapters_trained(before, t.model, extra=("score",))
    assert any("score" in k for k in _changed(before, t.model))
    prompts, responses = ["question 1?", "question 2?"], ["yes 1", "no 2"]
    scores = score_texts(t.model, tok, prompts, responses, 16, 16)
    # final/ and `export --merge` of the adapter checkpoint: plain scalar models that score the same.
    assert cli_main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "merged"), "--merge"]) == 0
    for folder in (t.save_final(), tmp_path / "merged"):
        model, _ = load_scalar_model(folder)
        assert not is_lora(model)
        torch.testing.assert_close(score_texts(model, tok, prompts, responses, 16, 16), scores, rtol=0, atol=1e-5)


def test_ppo_lora_actor_and_critic_train_adapters_and_the_reference_is_the_base(tmp_path):
    from rl_reason.trainers.ppo import PPOTrainer

    lm, tok = tiny_model(seed=0)
    lm.save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    args = [
        f"output_dir={tmp_path / 'run'}",
        f"model.name={tmp_path / 'policy'}",
        "model.max_prompt_tokens=200",
        "model.max_seq_len=256",
        "data.train=arithmetic:train",
        "data.train_limit=16",
        "rollout.n=2",
        "rollout.max_new_tokens=8",
        "train.prompts_per_step=2",
        "train.micro_batch_size=4",
        "train.lr=1e-2",
        "critic.lr=1e-2",
        "critic.init=actor",
        "algorithm.kl_coef=0.1",
        "reward_model.verifier_weight=1.0",
        "reward.verifier_workers=1",
        "log.tensorboard=false",
        "log.progress=false",
        "checkpoint.every=1",
        "train.steps=1",
        *LORA,
    ]
    t = PPOTrainer(load_config(PPOConfig, None, args))
    t.reward.verifier.close()
    t.reward.verifier = VaryingReward()  # a reward that varies, so the actor gets a gradient
    assert t.actor.ref_model is t.actor.model and is_lora(t.critic.module)
    actor0, critic0 = _snapshot(t.actor.model), _snapshot(t.critic.module)
    t.train()
    _assert_only_adapters_trained(actor0, t.actor.model)
    # The critic's zero-initialised head passes no gradient to the backbone on its first update.
    _assert_only_adapters_trained(critic0, t.critic.module, extra=("score",), changes="score")
    with adapter_disabled(t.actor.model):
        torch.testing.assert_close(
            _logprobs(t.actor.model, _sequences(tok)), _logprobs(lm, _sequences(tok)), rtol=0, atol=1e-6
        )
    critic_dir = tmp_path / "run" / "checkpoints" / "step_000001" / "critic" / "model"
    assert (critic_dir / "adapter_config.json").is_file()
    resumed = PPOTrainer(load_config(PPOConfig, None, [*args, "train.steps=2"]))
    resumed.resume()
    resumed.reward.close()
    for k, v in t.critic.module.named_parameters():
        torch.testing.assert_close(dict(resumed.critic.module.named_parameters())[k], v, rtol=0, atol=0)

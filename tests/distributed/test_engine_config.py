"""DeepSpeed recipes: every JSON loads, "auto" values come from the trainer config, errors name the file."""

import json
from pathlib import Path

import pytest

from rl_reason.config import ConfigError, load_config
from rl_reason.distributed.engine import deepspeed_config
from rl_reason.trainers.grpo_config import GRPOConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes" / "deepspeed").glob("*.json"))
KW = dict(micro_batch_size=4, grad_accum_steps=3, max_grad_norm=0.5, lr=2e-6, betas=(0.9, 0.95), weight_decay=0.01)


def test_zero_stages_and_offload_recipes_exist():
    assert {p.stem for p in RECIPES} == {"zero1", "zero2", "zero3", "zero2_offload", "zero3_offload"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_autos_filled_from_trainer_config(recipe):
    cfg = deepspeed_config(recipe, dtype="bfloat16", **KW)
    assert cfg["zero_optimization"]["stage"] == int(recipe.stem[4])
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["train_batch_size"]) == (4, 3, 12)
    assert cfg["gradient_clipping"] == 0.5
    assert cfg["bf16"]["enabled"] is True and cfg["fp16"]["enabled"] is False
    assert "auto" not in json.dumps(cfg)
    offload = "offload" in recipe.stem
    assert ("offload_optimizer" in cfg["zero_optimization"]) == offload == ("optimizer" in cfg)
    if offload:
        assert cfg["optimizer"]["params"] == {"lr": 2e-6, "betas": [0.9, 0.95], "weight_decay": 0.01}


def test_explicit_values_in_the_json_win(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"gradient_clipping": 2.0, "zero_optimization": {"stage": 1}}))
    assert deepspeed_config(path, dtype="float32", **KW)["gradient_clipping"] == 2.0


def test_bad_recipe_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        deepspeed_config(tmp_path / "missing.json", dtype="float32", **KW)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        deepspeed_config(bad, dtype="float32", **KW)


def test_distributed_section_in_trainer_config():
    cfg = load_config(GRPOConfig, None, ["distributed.engine=deepspeed", "distributed.deepspeed_config=recipes/deepspeed/zero3.json"])
    assert cfg.distributed.engine == "deepspeed"
    with pytest.raises(ConfigError, match="timeout_s"):
        load_config(GRPOConfig, None, ["distributed.timeout_s=0"])
    with pytest.raises(ConfigError, match="distributed.engine"):
        load_config(GRPOConfig, None, ["distributed.engine=horovod"])

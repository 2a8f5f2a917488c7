import dataclasses
import typing
from pathlib import Path

import pytest

from rl_reason.cli.main import main
from rl_reason.cli.train import load_train_config
from rl_reason.config import ConfigError, config_help, load_config
from rl_reason.trainers.grpo_config import GRPOConfig

# GRPO recipes; the post-training ones (rm, ppo_rm, dpo_verified, sft) are tested in test_post_train.py.
RECIPES = sorted(p for p in (Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml") if "trainer: grpo" in p.read_text())


def test_recipes_exist():
    names = {p.name for p in RECIPES}
    assert {"quickstart.yaml", "grpo_gsm8k.yaml", "dapo_math.yaml", "code_mbpp.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_and_validates(recipe):
    name, cfg = load_train_config(str(recipe), [])
    assert name == "grpo" and isinstance(cfg, GRPOConfig)
    assert cfg.sequences_per_step % cfg.train.mini_batches == 0
    assert cfg.mini_batch_size % cfg.train.micro_batch_size == 0


def test_dapo_recipe_has_dapo_defaults():
    _, cfg = load_train_config(str(RECIPES[0].parent / "dapo_math.yaml"), [])
    alg, dapo = cfg.algorithm, cfg.dapo
    assert (alg.clip_low, alg.clip_high, alg.loss_agg_mode, alg.kl_coef) == (0.2, 0.28, "token-mean", 0.0)
    assert cfg.train.lr == 1e-6 and cfg.rollout.n == 16
    assert dapo.dynamic_sampling and dapo.overlong_buffer > 0


def test_misspelled_key_names_dotted_path_and_suggestion(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("rollout:\n  max_new_token: 64\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'rollout.max_new_token'; did you mean 'rollout.max_new_tokens'"):
        load_config(GRPOConfig, p)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.prompts_per_step=3", "rollout.n=5", "train.mini_batches=2"], "15 sequences must divide into train.mini_batches=2"),
        (["train.mini_batches=2", "train.micro_batch_size=3"], "not a multiple of train.micro_batch_size=3"),
        (["model.max_seq_len=100"], "exceeds model.max_seq_len"),
        (["dapo.overlong_buffer=256"], "overlong_buffer"),
        (["rollout.n=1"], "rollout.n must be >= 2"),
        (["eval.every=5"], "needs data.eval"),
        (["eval.n=2", "eval.ks=[1,4]"], r"eval.ks \[4\]"),
        (["data.train=mine.jsonl", "data.fields=question=prompt"], "data.fields: unknown field mapping keys"),
        (["data.fields=prompt=q"], "neither data.train nor data.eval is one"),
        (["train.pack_tokens=-1"], r"train.pack_tokens must be >= 0"),
    ],
)
def test_inconsistent_sizes_fail_before_any_model_loads(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(GRPOConfig, None, overrides)


def test_cli_validate_and_errors(capsys, tmp_path):
    # a fresh output_dir: a run the user has in runs/quickstart must not decide this test
    assert main(["train", "--config", str(RECIPES[0].parent / "quickstart.yaml"), "--validate", "train.lr=2e-5",
                 f"output_dir={tmp_path / 'run'}"]) == 0
    assert "lr: 2.0e-05" in capsys.readouterr().out
    p = tmp_path / "x.yaml"
    p.write_text("trainer: nope\n")
    assert main(["train", "--config", str(p), "--validate"]) == 2
    assert "unknown trainer 'nope'" in capsys.readouterr().err


def test_help_lists_every_config_key(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for line in config_help(GRPOConfig):
        key = line.strip().split(" ")[0].rstrip(":")
        assert key in out
    assert "algorithm.clip_high" in out and "dapo.dynamic_sampling" in out


def _config_classes(cls, seen=None):
    seen = seen if seen is not None else {}
    seen[cls] = None
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp) and tp not in seen:
            _config_classes(tp, seen)
    return seen


def test_every_default_lies_within_its_declared_bounds():
    """Bounds are checked on what a recipe or flag sets; the defaults, never checked on load, must
    satisfy them too (a default outside its own bound would be a config no user could write)."""
    from rl_reason.config.loader import check_bounds
    from rl_reason.trainers import post_config

    classes = {}
    for top in (GRPOConfig, post_config.PPOConfig, post_config.RewardModelConfig, post_config.PRMConfig,
                post_config.DPOConfig, post_config.KTOConfig, post_config.SFTConfig):
        classes.update(_config_classes(top))
    bounded = 0
    for cls in classes:
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        check_bounds(cls, defaults)
        bounded += sum("bounds" in f.metadata for f in dataclasses.fields(cls))
    assert bounded > 40

from dataclasses import dataclass
from typing import Literal

import pytest

from rl_reason.config import ConfigError, cfg_field, config_help, load_config, to_dict


@dataclass
class Optim:
    lr: float = cfg_field(1e-6, "learning rate", gt=0)
    betas: list[float] = cfg_field([0.9, 0.999], "Adam betas")
    dropout: float = cfg_field(0.0, "dropout", ge=0, lt=1, why="1 drops everything")


@dataclass
class Job:
    name: str = cfg_field("run", "run name")
    steps: int = cfg_field(10, "optimizer steps")
    mode: Literal["token-mean", "seq-mean-token-mean"] = cfg_field("token-mean", "aggregation")
    seed: int | None = cfg_field(None, "seed")
    optim: Optim = cfg_field(Optim, "optimizer")

    def __post_init__(self):
        if self.steps <= 0:
            raise ConfigError(f"steps must be positive, got {self.steps}")


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 5\noptim:\n  lr: 1e-5\n")
    cfg = load_config(Job, p, ["optim.betas=[0.8, 0.9]", "seed=3", "mode=seq-mean-token-mean"])
    assert cfg.steps == 5 and cfg.optim.lr == 1e-5 and cfg.optim.betas == [0.8, 0.9]
    assert cfg.seed == 3 and cfg.mode == "seq-mean-token-mean"
    assert to_dict(cfg)["optim"] == {"lr": 1e-5, "betas": [0.8, 0.9], "dropout": 0.0}


def test_unknown_key_names_dotted_path_and_suggests(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown config key 'optim.lrr'; did you mean 'optim.lr'"):
        load_config(Job, p)
    with pytest.raises(ConfigError, match="unknown config key 'stpes'; did you mean 'steps'"):
        load_config(Job, None, ["stpes=3"])


@pytest.mark.parametrize(
    "override, message",
    [("steps=abc", "steps: expected an integer"), ("mode=mean", "'mean' is not one of"), ("steps=0", "steps must be positive"), ("optim=3", "expected a mapping")],
)
def test_bad_values_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Job, None, [override])


@pytest.mark.parametrize(
    "override, message",
    [("optim.lr=0", "optim.lr must be > 0, got 0.0"), ("optim.dropout=-0.1", "optim.dropout must be >= 0 and < 1: 1 drops everything, got -0.1"),
     ("optim.dropout=1", "optim.dropout must be >= 0 and < 1: 1 drops everything, got 1.0")],
)
def test_a_value_outside_its_fields_bounds_names_the_dotted_key(tmp_path, override, message):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(Job, p, [override])
    assert str(e.value) == f"{p}: {message}"
    assert load_config(Job, None, ["optim.lr=1e-9", "optim.dropout=0.99"]).optim.dropout == 0.99  # inside: accepted


def test_help_lists_every_leaf_with_default():
    text = "\n".join(config_help(Job))
    assert "optim.lr (float, default 1e-06): learning rate" in text
    assert "steps (int, default 10): optimizer steps" in text

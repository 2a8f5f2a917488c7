"""Command-line flags generated from a config dataclass: one default and one help per knob."""

import argparse
import dataclasses

import pytest

from rl_reason.config import ConfigError
from rl_reason.config.flags import add_config_flags, config_from_flags
from rl_reason.trainers.post_config import MintPairsConfig


def _parser(**kwargs) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_config_flags(p, MintPairsConfig, **kwargs)
    return p


def test_defaults_and_help_come_from_the_config():
    p = _parser(required=["data"])
    args = p.parse_args(["--data", "gsm8k"])
    assert config_from_flags(MintPairsConfig, args) == MintPairsConfig(data="gsm8k")
    text = p.format_help()
    for f in dataclasses.fields(MintPairsConfig):
        if f.name != "data":
            assert f"--{f.name.replace('_', '-')}" in text and f"(default: {f.default})" in text, f.name


def test_flags_are_typed_and_the_config_checks_run():
    p = _parser()
    args = p.parse_args(["--max-new-tokens", "32", "--temperature", "0.5"])
    cfg = config_from_flags(MintPairsConfig, args)
    assert (cfg.max_new_tokens, cfg.temperature) == (32, 0.5)
    with pytest.raises(argparse.ArgumentError):
        p.parse_args(["--n", "two"])
    # The field's bound, named by the flag the user typed.
    with pytest.raises(ConfigError, match="^--n must be >= 2: to find both a correct and an incorrect answer, got 1$"):
        config_from_flags(MintPairsConfig, p.parse_args(["--n", "1"]))


def test_skipped_fields_are_given_by_the_caller():
    p = _parser(skip=["template"])
    assert "--template" not in p.format_help()
    assert (
        config_from_flags(MintPairsConfig, p.parse_args([]), skip=["template"], template="base_boxed").template
        == "base_boxed"
    )

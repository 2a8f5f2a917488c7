"""Datasets to one record schema, prompt templates, cleaning and pair building (no torch)."""

from rl_reason.data_pipelines.schema import Example, load_examples, save_examples

__all__ = ["Example", "load_examples", "save_examples"]

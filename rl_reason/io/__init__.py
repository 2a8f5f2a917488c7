"""Crash-safe file I/O shared by every job: atomic writes, JSONL with line-numbered errors."""

from rl_reason.io.atomic import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text
from rl_reason.io.jsonl import JsonlAppender, JsonlError, read_jsonl, read_jsonl_records

__all__ = [
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "JsonlAppender",
    "JsonlError",
    "read_jsonl",
    "read_jsonl_records",
]

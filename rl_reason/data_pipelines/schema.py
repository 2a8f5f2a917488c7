"""The one record schema shared by math and code data, training and evaluation."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from rl_reason.io import JsonlError, read_jsonl


@dataclass
class Example:
    """One problem.

    ``prompt`` is the bare problem statement (templates are applied later); math problems
    carry a gold ``answer``, code problems carry ``tests`` in the code verifier's format.
    """

    id: str
    prompt: str
    answer: str | None = None
    tests: list[dict[str, Any]] | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "code" if self.tests is not None else "math"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str = "") -> Example:
        """Build from a row in this schema; raises ``ValueError`` naming ``where`` on bad rows."""
        prefix = f"{where}: " if where else ""
        unknown = set(row) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{prefix}unknown keys {sorted(unknown)}")
        for key in ("id", "prompt"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ValueError(f"{prefix}'{key}' must be a non-empty string")
        if row.get("answer") is None and row.get("tests") is None:
            raise ValueError(f"{prefix}needs an 'answer' (math) or 'tests' (code)")
        if row.get("answer") is not None and not isinstance(row["answer"], str):
            raise ValueError(f"{prefix}'answer' must be a string, got {type(row['answer']).__name__}")
        if row.get("tests") is not None and not isinstance(row["tests"], list):
            raise ValueError(f"{prefix}'tests' must be a list, got {type(row['tests']).__name__}")
        return cls(**row)


def load_examples(path: str | os.PathLike, errors: list[str] | None = None) -> list[Example]:
    """Read a JSONL file in the Example schema. Bad rows are reported (file and line) into
    ``errors`` and skipped when a list is given, otherwise the first one raises."""
    out = []
    for line_no, row in read_jsonl(path):
        try:
            if isinstance(row, JsonlError):
                raise row
            out.append(Example.from_dict(row, where=f"{path}:{line_no}"))
        except ValueError as e:
            if errors is None:
                raise
            errors.append(str(e))
    return out


def save_examples(path: str | os.PathLike, examples: list[Example]) -> None:
    import json

    from rl_reason.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples))

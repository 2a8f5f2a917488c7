"""JSON Lines reading with errors that name the file and line, and torn-line-safe appends."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rl_reason.io.closing import Closing


class JsonlError(ValueError):
    """A malformed JSONL row; the message names the file and the 1-based line number."""

    def __init__(self, path: str | os.PathLike, line_no: int, message: str):
        self.path = str(path)
        self.line_no = line_no
        super().__init__(f"{path}:{line_no}: {message}")


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any] | JsonlError]]:
    """Yield ``(line_no, row)`` for every non-blank line; a bad line yields a ``JsonlError``
    instead of a dict, so callers can report it and go on with the rest of the file.

    A last line without its newline is a write torn by a crash and is skipped silently:
    appends always end in a newline.
    """
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    torn_tail = not data.endswith(b"\n") and data != b""
    for i, raw in enumerate(lines, start=1):
        if i == len(lines) and torn_tail:
            break
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            yield i, JsonlError(path, i, f"invalid JSON ({e})")
            continue
        if not isinstance(row, dict):
            yield i, JsonlError(path, i, f"expected a JSON object, got {type(row).__name__}")
            continue
        yield i, row


def read_jsonl_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All rows of a JSONL file; raises the first ``JsonlError`` (strict variant)."""
    rows = []
    for _, row in read_jsonl(path):
        if isinstance(row, JsonlError):
            raise row
        rows.append(row)
    return rows


class JsonlAppender(Closing):
    """Append records to a JSONL file, one ``os.write`` per line on an O_APPEND descriptor.

    Each record is written and fsynced whole, so a crash leaves at most one torn final line,
    which ``read_jsonl`` skips. A torn tail left by an earlier crash is cut off on open.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._truncate_torn_tail()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _truncate_torn_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return
            f.truncate(data.rfind(b"\n") + 1)

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

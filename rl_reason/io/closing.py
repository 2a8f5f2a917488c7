"""One context-manager shape for everything that holds a resource until ``close()``."""

from __future__ import annotations

from typing import Any, TypeVar

_T = TypeVar("_T", bound="Closing")


class Closing:
    """``with obj:`` closes ``obj`` on exit; subclasses define ``close()`` (idempotent)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

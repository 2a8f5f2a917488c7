"""Name -> function registries, so a trainer dispatches an algorithm with one lookup."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class Registry:
    """A named table of functions of one kind (advantage estimators, policy losses, ...).

    >>> LOSSES = Registry("policy loss")
    >>> @LOSSES.register("mine")
    ... def mine(): return 1
    >>> LOSSES.get("mine")()
    1
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._table: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator adding the function under `name`; a name registered twice is an error."""

        def add(fn: F) -> F:
            if name in self._table:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {self._table[name].__qualname__})")
            self._table[name] = fn
            return fn

        return add

    def get(self, name: str) -> Callable:
        """The function registered as `name`; an unknown name raises KeyError listing the valid ones."""
        try:
            return self._table[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

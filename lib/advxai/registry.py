"""A tiny name -> builder registry (used for datasets, models, attacks, explainers) instead of if-chains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._items[name.lower()] = obj
            return obj

        return deco

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[str(name).lower()]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: str) -> bool:
        return str(name).lower() in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

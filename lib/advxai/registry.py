"""A tiny name -> builder registry (used for datasets, models, attacks, explainers) instead of if-chains."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from .errors import ParameterError, UnknownNameError

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


def check_params(what: str, params: dict, known: Iterable[str]) -> None:
    """Refuse, in one line with the closest known name, a parameter ``what`` does not take (a typo must not fall
    back to a default or fail later inside a run)."""
    known = sorted(known)
    for key in params or {}:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
            raise ParameterError(f"{what} has no parameter {key!r}; {hint}")


def keyword_names(fn: Callable, positional: int) -> list[str]:
    """The keyword parameters of a builder after its first ``positional`` ones (what a config may set)."""
    names = list(inspect.signature(fn).parameters)
    return names[positional:]

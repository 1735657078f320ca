"""A tiny name -> builder registry (used for datasets, models, attacks, explainers) instead of if-chains."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
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


def check_params(what: str, params: dict, known: Iterable[str] | Mapping[str, object]) -> None:
    """Refuse, in one line with the closest known name, a parameter ``what`` does not take (a typo must not fall
    back to a default or fail later inside a run); where ``known`` maps names to defaults, a value of another type
    than its default's (an integer for an integer, a number for a float, true/false for a bool) too."""
    defaults = known if isinstance(known, Mapping) else {}
    known = sorted(known)
    for key, value in (params or {}).items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
            raise ParameterError(f"{what} has no parameter {key!r}; {hint}")
        kind = _kind(defaults.get(key))
        if kind and (not isinstance(value, kind[0]) or (isinstance(value, bool) and kind[0] is not bool)):
            raise ParameterError(f"{what}: {key} must be {kind[1]} (as its default {defaults[key]!r}), got {value!r}")


def _kind(default) -> tuple[type | tuple, str] | None:
    """The type a parameter's value must have, from its default; None (no default, None, a name): not checked."""
    for kind, words in ((bool, "true or false"), (int, "an integer"), (float, "a number")):
        if isinstance(default, kind):
            return (int, float) if kind is float else kind, words
    return None


def keyword_defaults(fn: Callable, positional: int) -> dict[str, object]:
    """The keyword parameters of a builder after its first ``positional`` ones (what a config may set), with their
    defaults (None where there is none)."""
    params = list(inspect.signature(fn).parameters.values())[positional:]
    return {p.name: None if p.default is inspect.Parameter.empty else p.default for p in params}

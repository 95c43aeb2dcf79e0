"""One registry pattern for the training room's pluggable parts (models, datasets, partitions, strategies, ...).

Like ``solvers.registry``: a decorator registers a callable under a unique name with a one-line summary; lookups by
name fail with an ``InputError`` that names the kind and lists the known names. Specs on the command line read
``name`` or ``name:ARG`` or ``name:key=value,key=value`` (``parse_spec``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from splitsched.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    fn: T
    summary: str


class Registry(Generic[T]):
    """Named callables of one kind (``kind`` is used in error messages, e.g. ``"dataset"``)."""

    def __init__(self, kind: str, field: str | None = None):
        self.kind = kind
        self.field = field or f"--{kind}"
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, summary: str = "", *, replace: bool = False) -> Callable[[T], T]:
        """Decorator: register ``fn`` under ``name`` (``replace=True`` lets a user override a bundled one)."""

        def deco(fn: T) -> T:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, fn, summary)
            return fn

        return deco

    def get(self, name: str) -> T:
        """The callable registered as ``name``; an InputError naming the known ones otherwise."""
        if name not in self._entries:
            raise InputError(self.field, f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return self._entries[name].fn

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def parse_spec(text: str, field: str) -> tuple[str, list[str], dict[str, str]]:
    """``name[:arg][:key=value,...]`` -> (name, positional args, keyword args), all values as strings.

    ``dirichlet:0.5`` -> ("dirichlet", ["0.5"], {}); ``sglr:p=0.5,off=0.6`` -> ("sglr", [], {"p": "0.5", "off": "0.6"}).
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(field, f"expected a name, got {text!r}")
    name, _, rest = text.strip().partition(":")
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.replace(":", ",").split(","))):
        if "=" in item:
            key, value = (s.strip() for s in item.split("=", 1))
            if not key:
                raise InputError(field, f"expected key=value, got {item!r}")
            kwargs[key] = value
        elif kwargs:
            raise InputError(field, f"a positional value {item!r} cannot follow key=value pairs")
        else:
            args.append(item)
    return name.strip(), args, kwargs


def as_number(
    field: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float | int:
    """Parse a spec value as a finite number in [low, high] (``low_open``: > low); InputError otherwise."""
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise InputError(field, f"must be {kind}, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(field, f"must be finite, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise InputError(field, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and number > high:
        raise InputError(field, f"must be <= {high}, got {value!r}")
    return number

"""One registry pattern for every pluggable kind (solvers, models, datasets, partitions, strategies, samplers, codecs,
straggler and rate distributions, dispatch policies).

A decorator registers a callable (a function or a class) under a unique name with a one-line summary; a lookup of an
unknown name fails with an ``InputError`` (exit 2 on the command line) that names the kind and lists the known
names. Specs on the command line read ``name`` or ``name:ARG`` or ``name:key=value,key=value`` (``parse_spec``, the
one grammar; ``Registry.lookup`` parses and looks up in one call). Every registry is listed in ``catalogue()``, which
is what ``sched list`` prints (a kind's entries are complete once the module that registers them is imported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pslsched.base.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    fn: T
    summary: str


_ALL: dict[str, Registry] = {}


class Registry(Generic[T]):
    """Named callables of one kind (``kind`` is used in error messages, e.g. ``"dataset"``).

    ``plural`` names the kind in ``catalogue()`` (default ``kind + "s"``); ``field`` is the option an unknown name
    is reported against (default ``--kind``).
    """

    def __init__(self, kind: str, field: str | None = None, plural: str | None = None):
        self.kind = kind
        self.field = field or f"--{kind}"
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, Entry[T]] = {}
        if self.plural in _ALL:
            raise ValueError(f"a registry of {self.plural} exists already")
        _ALL[self.plural] = self

    def register(self, name: str, summary: str = "", *, replace: bool = False) -> Callable[[T], T]:
        """Decorator: register ``fn`` under ``name`` (``replace=True`` lets a user override a bundled one)."""

        def deco(fn: T) -> T:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, fn, summary)
            return fn

        return deco

    def get(self, name: str, field: str | None = None) -> T:
        """The callable registered as ``name``; an InputError on ``field`` naming the known ones otherwise."""
        if name not in self._entries:
            raise InputError(
                field or self.field, f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})"
            )
        return self._entries[name].fn

    def check(self, name: str, field: str | None = None) -> str:
        """``name`` if it is registered; the same InputError as ``get`` otherwise."""
        self.get(name, field)
        return name

    def lookup(self, spec: str, field: str | None = None) -> tuple[T, list[str], dict[str, str]]:
        """Parse ``name[:arg][:key=value,...]`` and look the name up: (callable, positional args, keyword args)."""
        name, args, kwargs = parse_spec(spec, field or self.field)
        return self.get(name, field), args, kwargs

    def summary(self, name: str) -> str:
        return self._entries[name].summary if name in self._entries else ""

    def names(self, *, sort: bool = True) -> list[str]:
        """The registered names, sorted (``sort=False``: in the order they were registered)."""
        return sorted(self._entries) if sort else list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def catalogue() -> dict[str, list[tuple[str, str]]]:
    """Every registry's names and summaries, by kind (plural), in the order the registries were made."""
    return {plural: [(e.name, e.summary) for e in reg.entries()] for plural, reg in _ALL.items()}


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


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def as_flag(field: str, value: object) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, any case, or a bool) -> bool; InputError naming ``field``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(field, f"must be true or false (or 1/0), got {value!r}")

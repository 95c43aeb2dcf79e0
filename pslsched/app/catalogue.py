"""Everything that can be plugged in, by kind: the registries of every room, complete (each room imported)."""

from __future__ import annotations

import pslsched.core.codecs  # noqa: F401  (registers the codecs)
import pslsched.core.generators  # noqa: F401  (registers the generator families)
import pslsched.core.testbed  # noqa: F401  (registers the link-rate distributions)
import pslsched.models.zoo  # noqa: F401  (registers the split models)
import pslsched.simulator  # noqa: F401  (registers the dispatch policies and straggler distributions)
import pslsched.solvers  # noqa: F401  (registers the solvers)
import pslsched.training  # noqa: F401  (registers datasets, partitions, samplers, strategies)
from pslsched.base.errors import InputError
from pslsched.base.registry import catalogue


def registered(kind: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Names and one-line summaries per kind (plural, e.g. ``solvers``); ``kind`` picks one (``dispatch-policies``
    or ``dispatch_policies`` for ``dispatch policies``)."""
    everything = catalogue()
    if kind is None:
        return everything
    kind = kind.replace("-", " ").replace("_", " ")
    if kind not in everything:
        raise InputError("kind", f"unknown kind {kind!r} (known: {', '.join(everything)})")
    return {kind: everything[kind]}

"""The training room: real PyTorch split training driven by the simulator's hooks.

Pluggable parts, each a registry (``pslsched.base.registry.Registry``): models (``models.MODELS``), datasets
(``data.DATASETS``), partitions (``partitions.PARTITIONS``), strategies (``strategies.STRATEGIES``) and samplers
(``samplers.SAMPLERS``).
``runner.run_training`` runs a schedule on the simulator's clock while training; ``sched train`` is its CLI.
"""

from __future__ import annotations


def catalogue() -> dict[str, list[tuple[str, str]]]:
    """Registered names and summaries per kind (what ``sched train --list`` prints)."""
    from pslsched.models.zoo import MODELS
    from pslsched.training.data import DATASETS
    from pslsched.training.partitions import PARTITIONS
    from pslsched.training.samplers import SAMPLERS
    from pslsched.training.strategies import STRATEGIES, load_all

    load_all()

    return {
        "datasets": [(e.name, e.summary) for e in DATASETS.entries()],
        "models": [(e.name, e.summary) for e in MODELS.entries()],
        "strategies": [(e.name, e.summary) for e in STRATEGIES.entries()],
        "partitions": [(e.name, e.summary) for e in PARTITIONS.entries()],
        "samplers": [(e.name, e.summary) for e in SAMPLERS.entries()],
    }

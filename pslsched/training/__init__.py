"""The training room: real PyTorch split training driven by the simulator's hooks.

``run_training`` runs a schedule on the simulator's clock while training (``prepare_training`` builds the data,
partition, model and strategy it uses); ``sched train`` is its command line. Pluggable parts, each a registry
(``pslsched.base.registry.Registry``, listed by ``pslsched.base.registry.catalogue()``): datasets (``DATASETS``),
partitions (``PARTITIONS``), samplers (``SAMPLERS``) and strategies (``STRATEGIES``); the models are
``pslsched.models.zoo.MODELS`` and the codecs ``pslsched.core.codecs.CODECS``.

Modules: ``config`` (settings), ``datasets`` + ``file_formats`` (data), ``partitions``, ``plans`` and ``samplers``
(who gives how many samples to which step), ``strategies/`` (one module per family), ``executor`` (each engine
step's arithmetic: ``TrainingHooks``), ``transfer`` (what crosses a cut under a codec), ``runner`` (the loop),
``checkpoints``, ``results`` (``TrainResult``, its files and plots), ``codec_study`` (``sched codecs``).
"""

from __future__ import annotations

from pslsched.simulator import round_instance
from pslsched.training.checkpoints import load_checkpoint, save_checkpoint
from pslsched.training.codec_study import budget_settings, codec_table
from pslsched.training.config import CutPoints, TrainConfig, train_config_from
from pslsched.training.datasets import DATASETS, Dataset, load_dataset
from pslsched.training.errors import Diverged
from pslsched.training.executor import TrainingHooks
from pslsched.training.partitions import PARTITIONS, make_partition
from pslsched.training.plans import make_plan, step_instance
from pslsched.training.results import TrainResult, plot_curves
from pslsched.training.runner import Prepared, evaluate, prepare_training, profile_batch, run_training, seeds
from pslsched.training.samplers import SAMPLERS, SamplingPlanner, make_sampler
from pslsched.training.strategies import (
    STRATEGIES,
    OptimizerSpec,
    Strategy,
    StrategySettings,
    make_strategy,
)
from pslsched.training.transfer import roundtrip

__all__ = [
    "DATASETS",
    "PARTITIONS",
    "SAMPLERS",
    "STRATEGIES",
    "CutPoints",
    "Dataset",
    "Diverged",
    "OptimizerSpec",
    "Prepared",
    "SamplingPlanner",
    "Strategy",
    "StrategySettings",
    "TrainConfig",
    "TrainResult",
    "TrainingHooks",
    "budget_settings",
    "codec_table",
    "evaluate",
    "load_checkpoint",
    "load_dataset",
    "make_partition",
    "make_plan",
    "make_sampler",
    "make_strategy",
    "plot_curves",
    "prepare_training",
    "profile_batch",
    "round_instance",
    "roundtrip",
    "run_training",
    "save_checkpoint",
    "seeds",
    "step_instance",
    "train_config_from",
]

"""The strategy interface: which model copies exist, whose gradients go where, when parameters step, how rounds end.

A strategy owns the parameters; ``pslsched.training.executor.TrainingHooks`` does the arithmetic of each step in
the order the engine runs the steps and asks the strategy for the modules to use and what to do after each step.
The model is three parts, ``head`` (client, blocks[:a]), ``body`` (helper, blocks[a:b]) and ``tail`` (client,
blocks[b:], ending in the logits; the loss is on the client). At a round's start every copy is loaded from the
global model; at its end the strategy averages the copies back into one global model (FedAvg by samples).

A strategy is built with its settings (``StrategySettings``: optimizer, rounds, seed) and its spec options
(strings), then bound once to the global model by ``setup``. A subclass implements the abstract hooks
(``load_copies``, ``head``, ``body``, ``tail``, ``split_contributions``) and may override the extension points
(``loss_divisor``, ``cut_gradient``, ``broadcast``, ``head_backward``, ``local_head_step``, ``after_*``,
``on_sync``, ``plan_flags``), which leave room for server-side extra losses (LocFedMix-SL's mixup), gradient
broadcast (SGLR) and auxiliary client losses without a rewrite. It registers itself with
``@STRATEGIES.register(name, summary)`` in its family's module of this package.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry, as_number

PARTS = ("head", "body", "tail")

# precompute(plan, batch, r, client_names) -> (loss_sum, samples): the whole round at once
Precompute = Callable[..., tuple[float, int]]


@dataclass(frozen=True)
class OptimizerSpec:
    """``sgd`` (with ``momentum``) or ``adam``. Copies that FedAvg merges start each round with a fresh optimizer
    state (as FedAvg clients do); a strategy whose models live on across rounds keeps theirs (PSL, SGLR)."""

    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0

    def make(self, params: Iterable[torch.Tensor], lr: float | None = None) -> torch.optim.Optimizer:
        """The optimizer over ``params``; ``foreach`` (one multi-tensor kernel call per operation instead of one
        per parameter): the same arithmetic per element, bit for bit, with less per-tensor overhead."""
        lr = self.lr if lr is None else lr
        if self.name == "adam":
            return torch.optim.Adam(list(params), lr=lr, weight_decay=self.weight_decay, foreach=True)
        return torch.optim.SGD(
            list(params), lr=lr, momentum=self.momentum, weight_decay=self.weight_decay, foreach=True
        )


def parse_optimizer(name: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> OptimizerSpec:
    """Validated optimizer settings (errors name the option)."""
    if name not in ("sgd", "adam"):
        raise InputError("--optimizer", f"unknown optimizer {name!r} (known: adam, sgd)")
    lr = float(as_number("--lr", lr, low=0.0, low_open=True))
    momentum = float(as_number("training.momentum", momentum, low=0.0, high=1.0))
    weight_decay = float(as_number("training.weight_decay", weight_decay, low=0.0))
    return OptimizerSpec(name, lr, momentum, weight_decay)


@dataclass(frozen=True)
class StrategySettings:
    """What every strategy is built with: the optimizer, the run's length (strategies that change with training
    progress read it) and the seed of its random stream (drawn with round and step)."""

    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    rounds: int = 1
    seed: int = 0


def parameters_of(*modules: nn.Module) -> list[torch.Tensor]:
    """The parameters of ``modules``, in order (what one optimizer steps)."""
    return [p for m in modules for p in m.parameters()]


def load_state(dst: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``dst``'s tensors in place and clear their gradients."""
    with torch.no_grad():
        for name, t in dst.state_dict(keep_vars=True).items():
            t.copy_(state[name])
            if isinstance(t, nn.Parameter):
                t.grad = None


def step_optimizer(opt: torch.optim.Optimizer) -> None:
    """One optimizer step, then the gradients cleared."""
    opt.step()
    opt.zero_grad(set_to_none=True)


def weighted_average(states: list[tuple[dict[str, torch.Tensor], float]]) -> dict[str, torch.Tensor] | None:
    """FedAvg: the average of state dicts weighted by sample counts (None when there is nothing to average)."""
    states = [(s, w) for s, w in states if w > 0]
    if not states:
        return None
    total = float(sum(w for _, w in states))
    out = {}
    for name in states[0][0]:
        acc = torch.zeros_like(states[0][0][name], dtype=torch.float64)
        for s, w in states:
            acc += s[name].detach().to(torch.float64) * (w / total)
        out[name] = acc.to(states[0][0][name].dtype)
    return out


Contributions = dict[str, list[tuple[dict[str, torch.Tensor], float]]]


class Strategy(ABC):
    """The base: local clients (``assign[j] < 0``) train a full copy; subclasses own the split clients' copies."""

    name = "base"
    sync = False  # a barrier after every step (synchronous PSL)
    stale_body = False  # a body that may step between a client's body forward and backward (SplitFed V2)
    return_grad = (
        True  # False: no cut-a gradient goes back; the head learns from local_head_step (LocSplitFed)
    )
    # a strategy whose clients are independent within a round may compute the whole round when it begins
    # (None: the steps compute, in event order)
    precompute: Precompute | None = None
    # one shared client model and a barrier per step: the executor may compute a step at its barrier as one batch
    # over its clients (``strategies.sync_batched``); False: client after client, in event order
    batched_steps = False

    def __init__(self, settings: StrategySettings | None = None, /, **options: str):
        if options:
            key = next(iter(options))
            raise InputError(f"--strategy.{key}", f"unknown option of {self.name!r}")
        settings = settings or StrategySettings()
        self.optimizer = settings.optimizer
        self.rounds = settings.rounds
        self.seed = settings.seed

    # --- set-up ---------------------------------------------------------------------------------------------
    def setup(
        self,
        global_model: dict[str, nn.Module],
        num_clients: int,
        num_helpers: int,
        example: torch.Tensor | None = None,
        num_classes: int | None = None,
    ) -> None:
        """Create the copies (once); ``global_model`` maps head/body/tail to modules holding the global model (a
        strategy may add parts of its own, e.g. auxiliary heads, built from ``example``, one input sample)."""
        self.global_model = global_model
        self.example, self.num_classes = example, num_classes
        self.num_clients, self.num_helpers = num_clients, num_helpers
        self.local_models: dict[int, dict[str, nn.Module]] = {}

    def copy_part(self, part: str) -> nn.Module:
        """A fresh copy of the global model's ``part``."""
        return copy.deepcopy(self.global_model[part])

    def begin_round(self, r: int, assign: np.ndarray) -> None:
        """Load every copy from the global model, fresh optimizers; ``assign[j]`` = helper or -1 (local)."""
        self.round = r
        self.assign = assign
        self.samples = np.zeros(self.num_clients)  # samples each client processed this round
        self.body_samples = np.zeros(self.num_helpers)
        state = {p: self.global_model[p].state_dict() for p in PARTS}
        self.local_opt: dict[int, torch.optim.Optimizer] = {}
        for j in np.flatnonzero(assign < 0):
            j = int(j)
            if j not in self.local_models:
                self.local_models[j] = {p: self.copy_part(p) for p in PARTS}
            for p in PARTS:
                load_state(self.local_models[j][p], state[p])
            self.local_opt[j] = self.optimizer.make(parameters_of(*self.local_models[j].values()))
        self.load_copies(state)

    @abstractmethod
    def load_copies(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Round start: load the split clients' and helpers' copies from ``state`` (head/body/tail state dicts of the
        global model) and make their fresh optimizers."""

    # --- what the hooks ask ---------------------------------------------------------------------------------
    @abstractmethod
    def head(self, j: int) -> nn.Module:
        """Client j's head."""

    @abstractmethod
    def tail(self, j: int) -> nn.Module:
        """Client j's tail."""

    @abstractmethod
    def body(self, j: int, i: int) -> nn.Module:
        """The body helper i runs for client j."""

    def local_model(self, j: int) -> dict[str, nn.Module]:
        return self.local_models[j]

    def loss_divisor(self, j: int, t: int, n: int, plan_samples: np.ndarray) -> float:
        """What client j's summed per-sample loss of step t is divided by (its own batch: a local mean)."""
        return float(n)

    def cut_gradient(self, j: int, t: int, grad: torch.Tensor) -> torch.Tensor:
        """The cut-layer gradient the helper sends back to client j."""
        return grad

    def optimizer_state(self) -> dict | None:
        """The optimizer state that lives on across rounds, for the checkpoint (None: fresh every round)."""
        return None

    def restore_optimizers(self, state: dict) -> None:
        """Resume: the ``optimizer_state`` a checkpoint saved, applied when the next round makes the optimizers."""
        raise ValueError(f"{self.name} keeps no optimizer state across rounds")

    def round_metrics(self) -> dict[str, float]:
        """Numbers of the round just run that belong in its row (e.g. SplitFed V2's body staleness)."""
        return {}

    def evaluation_note(self) -> str | None:
        """What the reported test accuracy measures, where that is not obvious (None: the global model's)."""
        return None

    def plan_flags(self, r: int) -> dict:
        """Round r's options for the engine's RoundPlan (``broadcast``, ``return_grad``, ``exchange_weights``,
        ``sequential``)."""
        return {} if self.return_grad else {"return_grad": False}

    def broadcast(self, t: int, i: int, grads: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """With ``broadcast`` plans: the cut-a gradients helper i sends its clients of step t (default: their own)."""
        return grads

    def local_head_step(
        self, j: int, t: int, x: torch.Tensor, y: torch.Tensor, head_out: torch.Tensor
    ) -> None:
        """Without a return gradient: the head's own update from a local loss (LocSplitFed)."""
        raise NotImplementedError(f"{self.name} sends the cut-a gradient back (return_grad)")

    def head_backward(
        self, j: int, t: int, x: torch.Tensor, head_out: torch.Tensor, grad: torch.Tensor
    ) -> None:
        """Client j's head backward from the gradient it received (auxiliary client losses are added here)."""
        head_out.backward(grad)

    # --- after each step --------------------------------------------------------------------------------------
    def after_body_fwd(self, j: int, i: int, t: int, smashed: torch.Tensor, y: torch.Tensor) -> None:
        """Helper i received client j's smashed data of step t (server-side extra losses may keep it)."""
        return None  # an optional hook: nothing to do by default

    def after_body_bwd(self, j: int, i: int, t: int, n: int) -> None:
        self.body_samples[i] += n

    def after_head_bwd(self, j: int, t: int, n: int) -> None:
        self.samples[j] += n

    def after_local(self, j: int, t: int, n: int) -> None:
        step_optimizer(self.local_opt[j])
        self.samples[j] += n

    def on_sync(self, t: int) -> None:
        """A synchronous step's barrier opened (only when ``sync``)."""
        return None  # an optional hook: nothing to do by default

    # --- the round's end ------------------------------------------------------------------------------------
    def end_round(self, members: list[int]) -> None:
        """Average the copies into the global model (members: the clients that finished the round)."""
        done = set(members)
        contributions = self.local_contributions(done)
        for part, states in self.split_contributions(done).items():
            contributions.setdefault(part, []).extend(states)
        for part, states in contributions.items():
            avg = weighted_average(states)
            if avg is not None:
                load_state(self.global_model[part], avg)

    def local_contributions(self, members: set[int]) -> Contributions:
        """The local clients' parts and their sample counts (every part of PARTS, maybe empty)."""
        out: Contributions = {p: [] for p in PARTS}
        for j, parts in self.local_models.items():
            if j in members and self.assign[j] < 0:
                for p in PARTS:
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        return out

    @abstractmethod
    def split_contributions(self, members: set[int]) -> Contributions:
        """The split clients' and helpers' parts and their sample counts, by global-model part (averaged after the
        local clients' ones)."""


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", plural="strategies")

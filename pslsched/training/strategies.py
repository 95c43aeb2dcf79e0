"""Training strategies: which model copies exist, whose gradients go where, when parameters step, how rounds end.

A strategy owns the parameters; ``pslsched.training.hooks.TrainingHooks`` does the arithmetic of each step in the
order the engine runs the steps and asks the strategy for the modules to use and what to do after each step. The
model is three parts, ``head`` (client, blocks[:a]), ``body`` (helper, blocks[a:b]) and ``tail`` (client,
blocks[b:], ending in the logits; the loss is on the client). At a round's start every copy is loaded from the
global model; at its end the strategy averages the copies back into one global model (FedAvg by samples).

Registered: ``splitfed1``, ``splitfed2``, ``psl``. A new strategy subclasses ``Strategy`` and registers itself with
``@STRATEGIES.register(name, summary)``; the extension points (``loss_divisor``, ``cut_gradient``, ``after_*``,
``on_sync``, ``extra_server_loss`` by overriding ``after_body_bwd`` / ``on_sync``) leave room for server-side extra
losses (LocFedMix-SL's mixup), gradient broadcast (SGLR) and auxiliary client losses without a rewrite.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pslsched.base.errors import InputError
from pslsched.base.registry import Registry, as_number, parse_spec

PARTS = ("head", "body", "tail")


@dataclass(frozen=True)
class OptimizerSpec:
    """``sgd`` (with ``momentum``) or ``adam``; a fresh optimizer state every round (as FedAvg clients do)."""

    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0

    def make(self, params: Iterable[torch.Tensor], lr: float | None = None) -> torch.optim.Optimizer:
        lr = self.lr if lr is None else lr
        if self.name == "adam":
            return torch.optim.Adam(list(params), lr=lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(list(params), lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)


def _params(*modules: nn.Module) -> list[torch.Tensor]:
    return [p for m in modules for p in m.parameters()]


def _load(dst: nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, t in dst.state_dict(keep_vars=True).items():
            t.copy_(state[name])
            if isinstance(t, nn.Parameter):
                t.grad = None


def _step(opt: torch.optim.Optimizer) -> None:
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


class Strategy:
    """The base: per-client client parts and a body per client; subclasses change what is shared and when."""

    name = "base"
    sync = False  # a barrier after every step (synchronous PSL)
    stale_body = False  # a body that may step between a client's body forward and backward (SplitFed V2)
    return_grad = (
        True  # False: no cut-a gradient goes back; the head learns from local_head_step (LocSplitFed)
    )
    # precompute(plan, batch, r, client_names) -> (loss_sum, samples): a strategy whose clients are independent
    # within a round may compute the whole round when it begins (None: the steps compute, in event order)
    precompute = None

    def __init__(self, **options: str):
        if options:
            key = next(iter(options))
            raise InputError(f"--strategy.{key}", f"unknown option of {self.name!r}")

    # --- set-up ---------------------------------------------------------------------------------------------
    def setup(
        self,
        global_model: dict[str, nn.Module],
        num_clients: int,
        num_helpers: int,
        optimizer: OptimizerSpec,
        example: torch.Tensor | None = None,
        num_classes: int | None = None,
    ) -> None:
        """Create the copies (once); ``global_model`` maps head/body/tail to modules holding the global model (a
        strategy may add parts of its own, e.g. auxiliary heads, built from ``example``, one input sample)."""
        self.glob = global_model
        self.example, self.num_classes = example, num_classes
        self.total_rounds = 1  # set by the runner: strategies that change with training progress read it
        self.seed = (
            0  # set by the runner: strategies that draw random numbers seed from it (with round, step)
        )
        self.k, self.h = num_clients, num_helpers
        self.opt = optimizer
        self.local_models: dict[int, dict[str, nn.Module]] = {}

    def _copy(self, part: str) -> nn.Module:
        return copy.deepcopy(self.glob[part])

    def begin_round(self, r: int, assign: np.ndarray) -> None:
        """Load every copy from the global model, fresh optimizers; ``assign[j]`` = helper or -1 (local)."""
        self.assign = assign
        self.samples = np.zeros(self.k)  # samples each client processed this round
        self.body_samples = np.zeros(self.h)
        state = {p: self.glob[p].state_dict() for p in PARTS}
        self.local_opt: dict[int, torch.optim.Optimizer] = {}
        for j in np.flatnonzero(assign < 0):
            j = int(j)
            if j not in self.local_models:
                self.local_models[j] = {p: self._copy(p) for p in PARTS}
            for p in PARTS:
                _load(self.local_models[j][p], state[p])
            self.local_opt[j] = self.opt.make(_params(*self.local_models[j].values()))
        self._begin(state)

    def _begin(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        raise NotImplementedError

    # --- what the hooks ask ---------------------------------------------------------------------------------
    def head(self, j: int) -> nn.Module:
        raise NotImplementedError

    def tail(self, j: int) -> nn.Module:
        raise NotImplementedError

    def body(self, j: int, i: int) -> nn.Module:
        raise NotImplementedError

    def local_model(self, j: int) -> dict[str, nn.Module]:
        return self.local_models[j]

    def loss_divisor(self, j: int, t: int, n: int, plan_samples: np.ndarray) -> float:
        """What client j's summed per-sample loss of step t is divided by (its own batch: a local mean)."""
        return float(n)

    def cut_gradient(self, j: int, t: int, grad: torch.Tensor) -> torch.Tensor:
        """The cut-layer gradient the helper sends back to client j."""
        return grad

    def plan_flags(self, r: int) -> dict:
        """Round r's options for the engine's RoundPlan (``broadcast``, ``return_grad``, ``exchange_weights``)."""
        return {} if self.return_grad else {"return_grad": False}

    def broadcast(self, t: int, i: int, grads: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """With ``broadcast`` plans: the cut-a gradients helper i sends its clients of step t (default: their own)."""
        return grads

    def local_head_step(
        self, j: int, t: int, x: torch.Tensor, y: torch.Tensor, head_out: torch.Tensor
    ) -> None:
        """Without a return gradient: the head's own update from a local loss (LocSplitFed)."""
        raise NotImplementedError

    def head_backward(
        self, j: int, t: int, x: torch.Tensor, head_out: torch.Tensor, grad: torch.Tensor
    ) -> None:
        """Client j's head backward from the gradient it received (auxiliary client losses are added here)."""
        head_out.backward(grad)

    # --- after each step --------------------------------------------------------------------------------------
    def after_body_fwd(self, j: int, i: int, t: int, smashed: torch.Tensor, y: torch.Tensor) -> None:
        """Helper i received client j's smashed data of step t (server-side extra losses may keep it)."""

    def after_body_bwd(self, j: int, i: int, t: int, n: int) -> None:
        self.body_samples[i] += n

    def after_head_bwd(self, j: int, t: int, n: int) -> None:
        self.samples[j] += n

    def after_local(self, j: int, t: int, n: int) -> None:
        _step(self.local_opt[j])
        self.samples[j] += n

    def on_sync(self, t: int) -> None:
        """A synchronous step's barrier opened (only when ``sync``)."""

    # --- the round's end ------------------------------------------------------------------------------------
    def end_round(self, members: list[int]) -> None:
        """Average the copies into the global model (members: the clients that finished the round)."""
        contributions = self._contributions(set(members))
        for part, states in contributions.items():
            avg = weighted_average(states)
            if avg is not None:
                _load(self.glob[part], avg)

    def _contributions(self, members: set[int]) -> dict[str, list[tuple[dict, float]]]:
        out: dict[str, list] = {p: [] for p in PARTS}
        for j, parts in self.local_models.items():
            if j in members and self.assign[j] < 0:
                for p in PARTS:
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        return out


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", plural="strategies")


def load_all() -> None:
    """Import the modules whose strategies register themselves beyond this one."""
    import pslsched.training.strategies_scaling  # noqa: F401


def make_strategy(spec: str) -> Strategy:
    """``name[:key=value,...]`` -> a Strategy instance."""
    load_all()
    name, args, kwargs = parse_spec(spec, "--strategy")
    cls = STRATEGIES.get(name)
    if args:
        raise InputError("--strategy", f"{name!r} takes key=value options, got {args[0]!r}")
    return cls(**kwargs)


@STRATEGIES.register(
    "splitfed1", "SplitFed V1: a body copy per client on its helper; all parts FedAvg'd per round"
)
class SplitFedV1(Strategy):
    name = "splitfed1"

    def __init__(self, batched: str = "false", **options: str):
        # batched=true: compute each round for all clients at once (pslsched.training.batched); default off
        super().__init__(**options)
        from pslsched.training.batched import BatchedRound, parse_flag

        self.batched = parse_flag("--strategy.batched", batched)
        if self.batched:
            self.precompute = BatchedRound(self)

    def setup(self, global_model, num_clients, num_helpers, optimizer, **kw):
        super().setup(global_model, num_clients, num_helpers, optimizer, **kw)
        self.parts: dict[int, dict[str, nn.Module]] = {}

    def _begin(self, state):
        self.client_opt: dict[int, torch.optim.Optimizer] = {}
        self.body_opt: dict[int, torch.optim.Optimizer] = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if j not in self.parts:
                self.parts[j] = {p: self._copy(p) for p in PARTS}
            for p in PARTS:
                _load(self.parts[j][p], state[p])
            self.client_opt[j] = self.opt.make(_params(self.parts[j]["head"], self.parts[j]["tail"]))
            self.body_opt[j] = self.opt.make(_params(self.parts[j]["body"]))

    def head(self, j):
        return self.parts[j]["head"]

    def tail(self, j):
        return self.parts[j]["tail"]

    def body(self, j, i):
        return self.parts[j]["body"]

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        _step(self.body_opt[j])

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        _step(self.client_opt[j])

    def _contributions(self, members):
        out = super()._contributions(members)
        for j, parts in self.parts.items():
            if j in members and self.assign[j] >= 0:
                for p in PARTS:
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        return out


@STRATEGIES.register(
    "splitfed2",
    "SplitFed V2: one body per helper, stepped after each client's backward in the helper's order",
)
class SplitFedV2(Strategy):
    name = "splitfed2"
    stale_body = True

    def setup(self, global_model, num_clients, num_helpers, optimizer, **kw):
        super().setup(global_model, num_clients, num_helpers, optimizer, **kw)
        self.clients: dict[int, dict[str, nn.Module]] = {}
        self.bodies = [self._copy("body") for _ in range(num_helpers)]

    def _begin(self, state):
        self.client_opt = {}
        for j in np.flatnonzero(self.assign >= 0):
            j = int(j)
            if j not in self.clients:
                self.clients[j] = {p: self._copy(p) for p in ("head", "tail")}
            for p in ("head", "tail"):
                _load(self.clients[j][p], state[p])
            self.client_opt[j] = self.opt.make(_params(*self.clients[j].values()))
        self.body_opt = []
        for body in self.bodies:
            _load(body, state["body"])
            self.body_opt.append(self.opt.make(_params(body)))

    def head(self, j):
        return self.clients[j]["head"]

    def tail(self, j):
        return self.clients[j]["tail"]

    def body(self, j, i):
        return self.bodies[i]

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        _step(self.body_opt[i])

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        _step(self.client_opt[j])

    def _contributions(self, members):
        out = super()._contributions(members)
        for j, parts in self.clients.items():
            if j in members and self.assign[j] >= 0:
                for p in ("head", "tail"):
                    out[p].append((parts[p].state_dict(), self.samples[j]))
        for i, body in enumerate(self.bodies):
            out["body"].append((body.state_dict(), self.body_samples[i]))
        return out


@STRATEGIES.register(
    "psl",
    "synchronous PSL: each step's loss is the mean over all participants; one shared client model; "
    "bodies step once per step",
)
class PSL(Strategy):
    """Parallel split learning with a barrier per step (as in the global-sampling paper's code).

    Client j's loss is its summed per-sample loss divided by the step's total samples, so the summed gradients on
    the one shared head + tail are the gradient of the global mean loss; each helper's body gets its clients'
    part and is rescaled to the mean over its own clients' samples before it steps (one helper: the global mean).
    """

    name = "psl"
    sync = True

    def plan_flags(self, r: int) -> dict:
        # the clients already share one head + tail: nothing of theirs to exchange at the round's end
        return {**super().plan_flags(r), "exchange_weights": False}

    def setup(self, global_model, num_clients, num_helpers, optimizer, **kw):
        super().setup(global_model, num_clients, num_helpers, optimizer, **kw)
        self.client = {p: self._copy(p) for p in ("head", "tail")}
        self.bodies = [self._copy("body") for _ in range(num_helpers)]

    def _begin(self, state):
        for p in ("head", "tail"):
            _load(self.client[p], state[p])
        self.client_opt = self.opt.make(_params(*self.client.values()))
        self.body_opt = []
        for body in self.bodies:
            _load(body, state["body"])
            self.body_opt.append(self.opt.make(_params(body), lr=self.server_lr()))
        self.step_total = 0.0
        self.step_body = np.zeros(self.h)
        self.client_split_samples = 0.0

    def server_lr(self) -> float | None:
        """The bodies' learning rate (None: the clients')."""
        return None

    def head(self, j):
        return self.client["head"]

    def tail(self, j):
        return self.client["tail"]

    def body(self, j, i):
        return self.bodies[i]

    def loss_divisor(self, j, t, n, plan_samples):
        row = plan_samples[t]
        self.step_total = float(row[self.assign >= 0].sum())
        return self.step_total

    def after_body_bwd(self, j, i, t, n):
        super().after_body_bwd(j, i, t, n)
        self.step_body[i] += n

    def after_head_bwd(self, j, t, n):
        super().after_head_bwd(j, t, n)
        self.client_split_samples += n

    def on_sync(self, t):
        for i, body in enumerate(self.bodies):
            if self.step_body[i] > 0:
                factor = self.step_total / self.step_body[i]
                for p in body.parameters():
                    if p.grad is not None:
                        p.grad.mul_(factor)
                _step(self.body_opt[i])
        if any(p.grad is not None for p in _params(*self.client.values())):
            _step(self.client_opt)
        self.step_body[:] = 0

    def _contributions(self, members):
        out = super()._contributions(members)
        split_members = [j for j in members if self.assign[j] >= 0]
        if split_members:
            for p in ("head", "tail"):
                out[p].append((self.client[p].state_dict(), float(self.samples[split_members].sum())))
        for i, body in enumerate(self.bodies):
            out["body"].append((body.state_dict(), self.body_samples[i]))
        return out


def parse_optimizer(name: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> OptimizerSpec:
    """Validated optimizer settings (errors name the option)."""
    if name not in ("sgd", "adam"):
        raise InputError("--optimizer", f"unknown optimizer {name!r} (known: adam, sgd)")
    lr = float(as_number("--lr", lr, low=0.0, low_open=True))
    momentum = float(as_number("training.momentum", momentum, low=0.0, high=1.0))
    weight_decay = float(as_number("training.weight_decay", weight_decay, low=0.0))
    return OptimizerSpec(name, lr, momentum, weight_decay)

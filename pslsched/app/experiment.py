"""One experiment, resolved: testbed -> built instance -> the round the clock runs -> settings (-> plan -> run).

``source_instance`` answers "which instance" for solve and compare; ``simulation_experiment`` (and, for training,
``pslsched.app.training.training_experiment``) resolves everything a run needs and checks it, solving nothing. What
they return is an ``Experiment``: the one description the use-cases (``pslsched.app``) plan and run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pslsched.app.cut_planning import CutChoice, choose_cut, parse_cuts, with_cuts_option
from pslsched.app.requests import (
    SIMULATION_OVERRIDES,
    CodecOptions,
    SimulateRequest,
    SourceOptions,
    TrainRequest,
)
from pslsched.base.errors import InputError
from pslsched.base.limits import check_client_batches
from pslsched.core.codecs import Compression, parse_codec
from pslsched.core.instance import Instance, read_instance
from pslsched.core.result import SolveResult
from pslsched.core.round_model import for_strategy, round_model
from pslsched.core.schedule import read_schedule
from pslsched.core.testbed import (
    CompressionSection,
    Testbed,
    build,
    default_testbed_path,
    load_testbed,
    scale_clients,
)
from pslsched.core.testbed.cut_choice import with_client_cuts
from pslsched.core.testbed.schema import Cut
from pslsched.core.workload import Workload
from pslsched.simulator import POLICIES, SimConfig, aggregator_index, config_from, parse_stragglers
from pslsched.solvers import SOLVERS

if TYPE_CHECKING:  # the training room imports torch; planning and simulating do without it
    from pslsched.training import TrainConfig


@dataclass
class Experiment:
    """Everything a run needs, checked: where the numbers come from, the settings, the round that is planned.

    ``instance`` is what the testbed builds (or the JSON holds); ``round_instance`` what one training round
    amounts to (its batches and samples; None outside training), which is the instance a solver plans when the
    experiment trains. ``dataset`` is loaded once, when the training settings are checked.
    """

    instance: Instance
    testbed: Testbed | None = None
    workload: Workload | None = None
    sim: SimConfig | None = None
    training: TrainConfig | None = None
    round_instance: Instance | None = None
    dataset: Any = None
    compression: Compression | None = None

    @property
    def planned_instance(self) -> Instance:
        """The instance the clock runs, hence the one to plan."""
        return self.round_instance or self.instance


def with_compression(options: CodecOptions, testbed: Testbed) -> Testbed:
    """The testbed with the request's codec options in its ``compression:`` section (unchanged without)."""
    if not options.wants_codec():
        return testbed
    base = testbed.compression or CompressionSection()
    if options.codec is not None:
        parse_codec(options.codec)  # the error names --codec
    section = base.model_copy(
        update={
            "codec": options.codec or base.codec,
            "cut_b": options.codec_cut_b or base.cut_b,
            "grads": options.compress_grads or base.grads,
        }
    )
    return testbed.model_copy(update={"compression": section})


def source_testbed(options: SourceOptions) -> Testbed:
    """The testbed a request names (the bundled default without ``profile``), scaled to ``clients`` if given."""
    return _testbed(options)


def _testbed(options: SourceOptions | TrainRequest) -> Testbed:
    testbed = with_compression(options, load_testbed(options.profile or default_testbed_path()))
    if isinstance(options, SourceOptions) and options.clients is not None:
        testbed = scale_clients(testbed, options.clients)
    if isinstance(options, SourceOptions):
        testbed, _ = with_cuts_option(testbed, parse_cuts(options.cuts))
    return testbed


def given_cut(options: SourceOptions) -> tuple[int, int] | None:
    """The testbed's own global cut (what ``--cuts auto`` is measured against), if it fixes one."""
    testbed = load_testbed(options.profile or default_testbed_path())
    return (testbed.cuts.a, testbed.cuts.b) if isinstance(testbed.cuts, Cut) else None


def fix_cuts(
    testbed: Testbed,
    strategy: str | None,
    *,
    solver: str,
    time_limit: float | None,
    seed: int = 0,
    given: tuple[int, int] | None = None,
    schedule: str | None = None,
    options: dict | None = None,
) -> tuple[Testbed, CutChoice | None, SolveResult | None]:
    """The testbed with every cut fixed: as it is; at a schedule's cuts (``schedule``); or chosen with the plan
    (the choice and the solver's answer at the chosen cut)."""
    if not testbed.chooses_cuts:
        return testbed, None, None
    if schedule is not None:
        cuts = read_schedule(schedule).cuts
        if not cuts:
            raise InputError(
                schedule, "the testbed's cut is chosen by the planner, and this schedule names none"
            )
        return with_client_cuts(testbed, cuts), None, None

    def instance_of(built) -> Instance:
        return strategy_instance(built.instance, built.workload, strategy, built.testbed.simulation)

    fixed, choice, result = choose_cut(
        testbed,
        instance_of,
        solver=solver,
        time_limit=time_limit,
        seed=seed,
        given=given,
        options=options,
        per_client=not round_model(strategy).shared_body,
    )
    if result.schedule is not None:
        own = choice.client_cuts or {}
        result.schedule.cuts = {c: own.get(c, choice.cut) for c in result.schedule.assignment}
    return fixed, choice, result


def _no_codec_on_json(options: SourceOptions) -> None:
    if options.wants_codec():
        raise InputError("--codec", "needs a testbed (--profile): an instance JSON has no activation sizes")
    if options.clients is not None:
        raise InputError("--clients", "needs a testbed (--profile): an instance JSON has its clients")
    if getattr(options, "cuts", None) is not None:
        raise InputError(
            "--cuts", "needs a testbed (--profile): an instance JSON has its times at fixed cuts"
        )


def source_instance(options: SourceOptions) -> Instance:
    """The instance named by ``instance`` or ``profile`` (the bundled default testbed when neither is given); a
    testbed's is the round of the request's ``strategy`` (SplitFed V1's by default): its round-end exchange and
    its memory model (problem.md §1)."""
    strategy = getattr(options, "strategy", None)
    model = round_model(strategy)  # an unknown strategy fails before anything is built
    if options.instance:
        _no_codec_on_json(options)
        if strategy is not None:
            raise InputError(
                "--strategy", "needs a testbed (--profile): an instance JSON states its own round"
            )
        return read_instance(options.instance)
    testbed, _, _ = fix_cuts(_testbed(options), model.strategy, solver="greedy", time_limit=None)
    built = build(testbed)
    return strategy_instance(built.instance, built.workload, model.strategy, built.testbed.simulation)


def strategy_instance(
    instance: Instance, workload: Workload | None, strategy: str | None, section: dict | None = None
) -> Instance:
    """A testbed's instance as ``strategy``'s round: its exchange (aggregator and averaging time from the
    simulation ``section``) and memory model."""
    sim = config_from(section)
    aggregator = aggregator_index(instance, sim.aggregator)
    return for_strategy(
        instance, workload, round_model(strategy), aggregator=aggregator, aggregate_ms=sim.aggregate_ms
    )


def check_solver(name: str, field: str = "--solver") -> str:
    """``name`` if a solver is registered under it; the registry's one-line error otherwise."""
    return SOLVERS.check(name, field)


def sim_config(
    section: dict | None, request: SimulateRequest | TrainRequest, stored: bool = False
) -> SimConfig:
    """The simulation settings: the section's, overridden by the request (only ``rounds`` for a stored run)."""
    if stored:
        return config_from(section, rounds=request.rounds)
    if request.policy is not None:
        POLICIES.check(request.policy, "--policy")  # named as the user gave it (the testbed's key otherwise)
    overrides = {target: getattr(request, name) for name, target in SIMULATION_OVERRIDES.items()}
    if request.stragglers is not None:
        overrides["stragglers"] = parse_stragglers(request.stragglers)
    return config_from(section, **overrides)


def simulation_experiment(request: SimulateRequest) -> Experiment:
    """Instance, workload and simulation settings, checked (a bad aggregator or solver fails here)."""
    if request.instance:
        _no_codec_on_json(request)
        exp = Experiment(instance=read_instance(request.instance))
        section = None
    else:
        testbed, _, _ = fix_cuts(
            _testbed(request),
            round_model(request.strategy).strategy if request.strategy else None,
            solver=request.solver or "greedy",
            time_limit=request.time_limit,
            seed=request.seed or 0,
            schedule=request.schedule,
        )
        built = build(testbed)
        exp = Experiment(instance=built.instance, testbed=built.testbed, workload=built.workload)
        section = built.testbed.simulation
    exp.sim = sim_config(section, request)
    aggregator = aggregator_index(exp.instance, exp.sim.aggregator)
    if (
        exp.workload is not None
    ):  # the strategy's round: its exchange, memory and waits (SplitFed V1's default)
        model = round_model(request.strategy)
        exp.instance = for_strategy(
            exp.instance, exp.workload, model, aggregator=aggregator, aggregate_ms=exp.sim.aggregate_ms
        )
    batches = request.batches or exp.sim.batches
    field = "--batches" if request.batches else "batches"
    check_client_batches(field, exp.instance.num_clients, batches or exp.instance.batches)
    if batches and batches != exp.instance.batches:
        exp.instance = dataclasses.replace(exp.instance, batches=batches)
    if not request.schedule:
        check_solver(request.solver or "greedy")
    return exp

"""The whole round as the plan (issue 20): what choosing the cut buys, against the default cut and the heuristics.

For the four anchor profiles (ResNet-101 and VGG-19 on CIFAR-10 and MNIST), the anchor device mix (d1, d2,
jetson-cpu, jetson-gpu clients; VM and laptop helpers, one per 10 clients, memory 1.3x the bodies at the default
cut, or 8 GB each) and two link families (Tirana et al.'s rate classes, 1-20 Mbit/s; a fast uniform 50-100 Mbit/s), K = 20-200,
plus the two bundled testbeds, every case is planned as SplitFed V1's round (the weights exchange included):

* ``default``: ``auto`` at the profile's default cut (the generators' fixed cut), and the published heuristics
  (``greedy``, Tirana et al.; ``equid``, Ganian et al.) at that cut;
* ``global``: the best single global cut (``cuts: auto``, every client at one cut);
* ``auto``: ``cuts: auto`` with per-client cuts (a body per client), and its bound over every option.

Every schedule is validated, and the noise-free ``simulate`` of the chosen plan is checked to repeat its round.

    .venv/bin/python benchmarks/whole_round.py                 # ~25 min on 2 cores
    .venv/bin/python benchmarks/whole_round.py --quick         # K = 20 only, two profiles
    .venv/bin/python benchmarks/whole_round.py --scale         # + K = 10,000 x 100: time to a first plan

Prints markdown tables (benchmarks/RESULTS.md, "The whole round").
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pslsched.app.cut_planning import choose_cut  # noqa: E402
from pslsched.app.experiment import strategy_instance  # noqa: E402
from pslsched.core.generators import CLIENT_DEVICES as ANCHOR_CLIENTS  # noqa: E402
from pslsched.core.generators import DEFAULT_CUTS  # noqa: E402
from pslsched.core.testbed import build, default_testbed_path, load_testbed, parse_testbed  # noqa: E402
from pslsched.core.validate import validate  # noqa: E402
from pslsched.profiles import ProfileError, load_profile  # noqa: E402
from pslsched.simulator import SimConfig, simulate  # noqa: E402
from pslsched.solvers import solve  # noqa: E402

PROFILES = ("resnet101_cifar10", "resnet101_mnist", "vgg19_cifar10", "vgg19_mnist")
LINKS = {
    "tirana": {
        "classes": [
            {"share": 0.268, "low": 1, "high": 4},
            {"share": 0.375, "low": 4, "high": 10},
            {"share": 0.107, "low": 10, "high": 15},
            {"share": 0.250, "low": 15, "high": 20},
        ]
    },
    "fast": {"dist": "uniform", "low": 50, "high": 100},
}
LIMIT_S = 4.0


def _meaningful(profile, device: str, cut: tuple[int, int]) -> bool:
    try:
        profile.check_cut(device, *cut)
    except ProfileError:
        return False
    return True


def testbed_for(
    profile: str, k: int, links: str, seed: int, helpers: int | None = None, memory: str = "scaled"
) -> dict:
    """The anchor mix at ``k`` clients (a quarter per device) with helpers that hold 1.3x the bodies at the default
    cut (``scaled``, as the generators size them) or 8 GB each (``ample``)."""
    a, b = DEFAULT_CUTS[profile]
    prof = load_profile(profile)
    h = helpers or max(2, k // 10)
    body = prof.body_memory_mb(a, b)
    memory_mb = round(1.3 * k * body / h, 1) if memory == "scaled" else 8192.0
    devices = [
        d for d in ANCHOR_CLIENTS if _meaningful(prof, d, (a, b))
    ]  # profiled here, meaningful at the cut
    groups = [
        {
            "name": dev,
            "count": k // len(devices) + (1 if g < k % len(devices) else 0),
            "device": dev,
            "uplink_mbps": LINKS[links],
            "latency_ms": {"dist": "uniform", "low": 1, "high": 5},
        }
        for g, dev in enumerate(devices)
    ]
    return {
        "name": f"{profile}-{links}-k{k}",
        "seed": seed,
        "model": {"profile": profile},
        "cuts": {"a": a, "b": b},
        "helpers": [
            {"name": "vm", "count": (h + 1) // 2, "device": "VM", "memory_mb": memory_mb},
            {"name": "laptop", "count": h // 2, "device": "laptop", "memory_mb": memory_mb},
        ],
        "clients": [g for g in groups if g["count"] > 0],
    }


def instance_of(built):
    return strategy_instance(built.instance, built.workload, None, built.testbed.simulation)


def objective(res) -> float:
    return math.inf if res.objective is None else float(res.objective)


def case(testbed, given: tuple[int, int]) -> dict:
    """One row: the default cut's rounds, the best global cut's and per-client auto's, with bounds."""
    at_given = instance_of(build(testbed))
    row = {}
    for name in ("greedy", "equid", "auto"):
        res = solve(at_given, name, time_limit=LIMIT_S, seed=0, workers=1)
        if res.schedule is not None:
            assert validate(at_given, res.schedule) == [], name
        row[name] = objective(res)
    chooser = testbed.model_copy(
        update={"cuts": "auto", "clients": [g.model_copy(update={"cut": None}) for g in testbed.clients]}
    )
    opts = {"workers": 1}
    fixed, glob, res_g = choose_cut(
        chooser, instance_of, solver="auto", time_limit=LIMIT_S, given=given, options=opts
    )
    assert validate(instance_of(build(fixed)), res_g.schedule) == []
    row.update(
        global_cut=glob.cut,
        global_round=objective(res_g),
        global_bound=glob.global_bound,
        cands=len(glob.table),
    )
    t0 = time.perf_counter()
    fixed, mine, res = choose_cut(
        chooser, instance_of, solver="auto", time_limit=LIMIT_S, given=given, options=opts, per_client=True
    )
    row["auto_s"] = time.perf_counter() - t0
    inst = instance_of(build(fixed))
    assert validate(inst, res.schedule) == []
    built = build(fixed)
    rec = simulate(inst, res.schedule, SimConfig(), workload=built.workload)
    simulated = float(rec.rounds["round_time_ms"].iloc[0])
    assert abs(simulated - res.round_time) <= 1e-6 * res.round_time, (simulated, res.round_time)
    row.update(auto_round=objective(res), auto_bound=res.lower_bound, per_client=mine.client_cuts is not None)
    return row


def fmt(ms: float) -> str:
    return "none" if not math.isfinite(ms) else f"{ms / 1000:,.1f}"


def print_row(label: str, r: dict) -> None:
    gap = 100 * (r["auto_round"] - r["auto_bound"]) / r["auto_bound"] if r["auto_bound"] > 0 else float("nan")
    best_default = min(r["auto"], r["greedy"], r["equid"])
    saved = 100 * (1 - r["auto_round"] / best_default) if math.isfinite(best_default) else float("nan")
    a, b = r["global_cut"]
    print(
        f"| {label} | {fmt(r['greedy'])} / {fmt(r['equid'])} | {fmt(r['auto'])} | {fmt(r['global_round'])} (a={a}, b={b}) "
        f"| {fmt(r['auto_round'])}{' *' if r['per_client'] else ''} | {fmt(r['auto_bound'])} | {gap:.1f} | {saved:.1f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument(
        "--profiles", nargs="*", default=None, help="only these anchor profiles (none: skip them)"
    )
    args = parser.parse_args()
    sizes = (20,) if args.quick else (20, 100, 200)
    profiles = PROFILES[::2] if args.quick else PROFILES
    if args.profiles is not None:
        profiles = tuple(args.profiles)
    print(
        "| case | greedy / equid at default cut (s) | auto at default cut (s) | best global cut (s) | cuts: auto (s) "
        "| bound over all options (s) | gap % | saved vs best at default cut % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for profile in profiles:
        for links, memory in (("tirana", "scaled"), ("fast", "scaled"), ("tirana", "ample")):
            for k in sizes if links == "tirana" and memory == "scaled" else sizes[:2]:
                tb = parse_testbed(testbed_for(profile, k, links, seed=k, memory=memory))
                print_row(f"{profile} {links} {memory} K={k}", case(tb, DEFAULT_CUTS[profile]))
    default = load_testbed(default_testbed_path())
    print_row("bundled default (24 x 4)", case(default, (default.cuts.a, default.cuts.b)))
    lab = load_testbed(ROOT / "pslsched/profiles/examples/vgg19_pi_lab.yaml")
    print_row("bundled vgg19_pi_lab (8 x 2)", case(lab, (lab.cuts.a, lab.cuts.b)))
    if args.scale:
        scale()


def scale() -> None:
    """K = 10,000 clients x 100 helpers: the time to a first valid plan with cuts: auto, and its round against the
    default cut's (greedy at both, the candidates ranked on a 200-client sample)."""
    tb = parse_testbed(testbed_for("resnet101_cifar10", 10_000, "tirana", seed=1, helpers=100))
    chooser = tb.model_copy(
        update={"cuts": "auto", "clients": [g.model_copy(update={"cut": None}) for g in tb.clients]}
    )
    t0 = time.perf_counter()
    fixed, choice, res = choose_cut(chooser, instance_of, solver="greedy", time_limit=5, given=(2, 35))
    wall = time.perf_counter() - t0
    assert validate(instance_of(build(fixed)), res.schedule) == []
    print(
        f"\nK = 10,000 x 100 (resnet101_cifar10, tirana links): first valid plan with cuts: auto in {wall:.1f} s "
        f"(cut a={choice.cut[0]}, b={choice.cut[1]}, {len(choice.table)} candidates), round {fmt(objective(res))} s; "
        f"the default cut (2, 35): {fmt(choice.given_round or math.inf)} s"
    )


if __name__ == "__main__":
    main()

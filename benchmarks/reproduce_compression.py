"""Reproduce Zhou et al.'s mask-encoded sparsification (MS; /work/shared/docs/algorithms.md B5), scaled to CPU.

Five parts; the codecs are the library's (pslsched.core.codecs: sizes and encode/decode, one class per codec):

A. The paper's arithmetic, computed by the code: a 4x4 fp32 map (64 B) with k = 4, b = 2 -> 20 B; r = 0.01, b = 2
   -> 2.32 bits per entry, 92.75% saved.
B. The paper's own error protocol on synthetic post-ReLU data (their error_postrelu notebook: relu(N(0, 1)), MS with
   r = 1/32 and a q-bit mask against top-k with k = q d / 32, which the paper counts as values + a 1-bit index bitmap
   = q+1 bits per entry, and (q+1)-bit quantisation), plus top-k at q+1 bits under our codec's index count.
C. Reconstruction error at equal budgets on real smashed data: ``codec_table`` (cnn trained 100 steps first) on
   digits and mnist5k, shallow (a=1) and deep (a=3; a=4 after the pooling block on mnist5k) cuts, at 2.5, 4 and
   8 bits per entry; the error ratio of top-k (and the others) to MS.
D. The planner: the bundled default testbed (ResNet-101 profile, 20 clients, 3 helpers) and the same scaled to 6
   clients, makespan re-optimised per codec (``greedy`` and ``auto``), including the modelled encode/decode time;
   per client device class: encode time added against upload time saved.
E. Training at equal budget (about 2.5 bits per entry on the trained model's cut): none, ms, topk, randtopk, quant,
   cnn cut a=1 and a=3 (b=5), splitfed1, Adam lr 0.01, batch 16, one round = one local epoch, on the default
   testbed scaled to 6 clients (so the codec shows on the clock), schedule solved by ``auto`` on the compressed
   instance; the same Compression goes to ``build`` and to ``run_training``. Accuracy is reported as the library
   measures it (the global model on the test split, uncompressed) and with the codec applied at inference, as the
   paper validates (each codec run is replayed round by round with ``resume``, which reproduces it exactly, so the
   global model can be evaluated that way after every round).

    .venv/bin/python benchmarks/reproduce_compression.py            # full (~13 min wall on 2 shared cores)
    .venv/bin/python benchmarks/reproduce_compression.py --quick    # smoke run (~1.5 min)

Prints markdown tables; --out (default /tmp/reproduce_compression) gets errors.csv, makespan.csv, devices.csv,
training.csv (one row per round of every run) and tables.md.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import REPRODUCTION_TESTBED, dataset, fmt, md  # noqa: E402

from pslsched.core.codecs import Compression, parse_codec  # noqa: E402
from pslsched.core.testbed import build, load_testbed, scale_clients  # noqa: E402
from pslsched.models.zoo import build_blocks  # noqa: E402
from pslsched.simulator import SimConfig  # noqa: E402
from pslsched.solvers import solve  # noqa: E402
from pslsched.training import (  # noqa: E402
    CutPoints,
    TrainConfig,
    budget_settings,
    codec_table,
    load_dataset,
    roundtrip,
    run_training,
)

torch.set_num_threads(1)

TRAIN_CODECS = ("none", "ms", "topk", "randtopk", "quant")
DEVICE_NAMES = {"d1": "rpi4 (d1)", "d2": "rpi3 (d2)", "jetson-cpu": "jetson-cpu", "jetson-gpu": "jetson-gpu"}


def entries(dataset: str, cut: int, data_cache: dict) -> int:
    """Entries per sample of the cnn's cut-``cut`` activation on ``dataset``."""
    data = data_cache.setdefault(dataset, load_dataset(dataset, None, seed=0))
    blocks = build_blocks("cnn", data.input_shape, data.num_classes)
    x = torch.zeros((1, *data.input_shape))
    with torch.no_grad():
        for b in blocks[:cut]:
            x = b(x)
    return int(x.numel())


def pick(specs: list[str], name: str) -> str:
    return next(s for s in specs if s.split(":")[0] == name)


# --- A: arithmetic ------------------------------------------------------------------------------------------------
def part_a() -> str:
    ms = parse_codec("ms:r=0.25,bits=2")  # k = 4 of d = 16
    ms2 = parse_codec("ms:r=0.01,bits=2")
    d = 100_000
    bpe = ms2.bits_per_entry(d)
    x = torch.relu(torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(0)))
    _, bits = roundtrip(ms, x)
    rows = [
        {
            "quantity": "4x4 fp32 map, k = 4, b = 2: payload",
            "paper": "64 B -> 20 B",
            "ours": f"{parse_codec('none').payload_bits(16) // 8} B -> {ms.payload_bits(16) / 8:g} B "
            f"(k = {ms.kept(16)}; a real encode of a 4x4 map: {bits / 8:g} B)",
        },
        {"quantity": "r = 0.01, b = 2: bits per entry", "paper": "2.32", "ours": f"{bpe:.4f} (d = {d:,})"},
        {
            "quantity": "r = 0.01, b = 2: saved vs fp32",
            "paper": "92.75%",
            "ours": f"{100 * (1 - bpe / 32):.2f}%",
        },
    ]
    return md(pd.DataFrame(rows))


# --- B: the paper's synthetic protocol -----------------------------------------------------------------------------
def part_b(d: int, draws: int, qs: list[int]) -> str:
    """The paper's notebook (error_postrelu): MS with k = d/32 and a q-bit mask (q+1 bits per entry) against top-k
    and randomised top-k with k = q d / 32, which the paper counts as q+1 bits per entry too (32-bit values plus a
    1-bit-per-entry index bitmap), and (q+1)-bit quantisation. Our top-k codec sends ceil(log2 d)-bit indices
    instead of a bitmap, so its exact size is shown beside the paper's count, and one more row gives top-k the same
    q+1 bits under our count."""
    index = math.ceil(math.log2(d))
    rows = []
    for q in qs:
        specs = {  # label: (spec, bits per entry as the paper counts them)
            f"ms:r=1/32,bits={q}": (f"ms:r={1 / 32:.8g},bits={q}", q + 1),
            f"topk, k = {q}d/32": (f"topk:r={q / 32:.8g}", q + 1),
            f"randtopk, k = {q}d/32, alpha 0.1": (f"randtopk:r={q / 32:.8g},alpha=0.1", q + 1),
            f"topk, {q + 1} bits/entry with our index count": (f"topk:r={(q + 1) / (32 + index):.8g}", None),
            f"quant:bits={q + 1}": (f"quant:bits={q + 1}", q + 1),
        }
        err: dict[str, list[float]] = {k: [] for k in specs}
        bpe = {}
        for s in range(draws):
            x = torch.relu(torch.randn(1, d, generator=torch.Generator().manual_seed(s)))
            for label, (spec, _) in specs.items():
                y, bits = roundtrip(parse_codec(spec), x, torch.Generator().manual_seed(s))
                err[label].append(float((x - y).norm()))
                bpe[label] = bits / d
        ms_err = np.mean(err[f"ms:r=1/32,bits={q}"])
        for label, (_, paper_bits) in specs.items():
            rows.append(
                {
                    "q": q,
                    "codec": label,
                    "bits/entry (paper's count)": "-" if paper_bits is None else f"{paper_bits}",
                    "bits/entry (our codec, exact)": f"{bpe[label]:.2f}",
                    "2-norm error": f"{np.mean(err[label]):.1f}",
                    "/ MS": f"{np.mean(err[label]) / ms_err:.2f}",
                }
            )
    return md(pd.DataFrame(rows))


# --- C: error at equal budgets on real smashed data ----------------------------------------------------------------
def part_c(
    datasets: dict[str, list[int]], budgets: list[float], seed_list: list[int], warmup: int, out: Path
) -> tuple[str, str]:
    raw = []
    cache: dict = {}
    for data, cuts in datasets.items():
        for cut in cuts:
            d = entries(data, cut, cache)
            # one codec_table per (data, cut, seed): every budget's settings (``budget_settings``) in one call, so the
            # warm-up training runs once; a row's budget is the one its setting was picked for. budget_settings gives
            # MS a 2-bit mask and spends the rest on r; at whole budgets B >= 3 we add the paper's notebook shape,
            # r = 1/32 with a (B-1)-bit mask ("ms-wide")
            settings, budget_of, kinds = [], [], []
            for budget in budgets:
                for spec in budget_settings(budget, d):
                    if spec.split(":")[0] in ("quant", "topk", "randtopk", "ms"):
                        settings.append(spec)
                        budget_of.append(budget)
                        kinds.append(spec.split(":")[0])
                if budget == int(budget) and budget >= 3:
                    settings.append(f"ms:r=0.03125,bits={int(budget) - 1}")
                    budget_of.append(budget)
                    kinds.append("ms-wide")
            for seed in seed_list:
                t0 = time.process_time()
                df, info = codec_table(
                    data, "cnn", cut, settings=settings, samples=256, warmup_steps=warmup, seed=seed
                )
                assert info["entries_per_sample"] == d
                df["name"] = kinds
                for key in ("dataset", "cut", "entries_per_sample", "relu_features"):
                    df[key] = info[key]
                df["budget"], df["seed"] = budget_of, seed
                raw.append(df)
                print(
                    f"  [C] {data} cut {cut} (d={d}, post-ReLU {info['relu_features']}) seed {seed}: "
                    f"{time.process_time() - t0:.1f}s",
                    flush=True,
                )
    raw = pd.concat(raw)
    raw.to_csv(out / "errors.csv", index=False)
    rows, ratios = [], []
    for (data, cut, budget), g in raw.groupby(["dataset", "cut", "budget"], sort=False):
        d = int(g["entries_per_sample"].iloc[0])
        for name in ("quant", "topk", "randtopk", "ms", "ms-wide"):
            h = g[g["name"] == name]
            if h.empty:
                continue
            rows.append(
                {
                    "data": data,
                    "cut a": cut,
                    "d": d,
                    "budget": budget,
                    "codec": h["codec"].iloc[0],
                    "bits/entry": f"{h['bits_per_entry'].mean():.2f}",
                    "rel. L2 error": fmt(h["rel_l2_error"], 3),
                    "grad cosine": fmt(h["grad_cosine"], 3),
                }
            )
        ms = g[g["name"] == "ms"].set_index("seed")["rel_l2_error"]
        exact = int((ms < 1e-4).sum())
        safe = ms.where(ms >= 1e-4)  # a ratio to an exact MS (every non-zero entry kept) is left out
        rat = {
            n: g[g["name"] == n].set_index("seed")["rel_l2_error"] / safe
            for n in ("topk", "randtopk", "quant")
        }
        wide = g[g["name"] == "ms-wide"].set_index("seed")["rel_l2_error"]
        ratios.append(
            {
                "data": data,
                "cut a": cut,
                "d": d,
                "budget": budget,
                "MS error": fmt(ms, 3) + (f" (exact in {exact}/{len(ms)} seeds)" if exact else ""),
                "top-k / MS": fmt(rat["topk"], 2),
                "randtop-k / MS": fmt(rat["randtopk"], 2),
                "quant / MS": fmt(rat["quant"], 2),
                "MS r=1/32, b=B-1: error": fmt(wide, 3) if len(wide) else "",
            }
        )
    return md(pd.DataFrame(rows)), md(pd.DataFrame(ratios))


# --- D: the planner ------------------------------------------------------------------------------------------------
_solved: dict = {}


def solved(k: int | None, spec: str, solver: str, limit: float):
    """(built, SolveResult) of the default testbed (scaled to k clients) compressed with ``spec``."""
    key = (k, spec, solver)
    if key not in _solved:
        tb = load_testbed(REPRODUCTION_TESTBED)
        if k is not None:
            tb = scale_clients(tb, k)
        comp = Compression(parse_codec(spec), cut_b=False, grads=False)
        b = build(tb, comp)
        opts = {"workers": 1} if solver == "auto" else {}
        res = solve(b.instance, solver, time_limit=limit, seed=0, **opts)
        if res.schedule is None:
            raise SystemExit(f"{solver} found no schedule for {spec} with {k} clients: {res.message}")
        _solved[key] = (b, res, comp)
    return _solved[key]


def part_d(specs: list[str], ks: list[int | None], limit: float, out: Path) -> tuple[str, str]:
    rows, dev_rows, helper_rows = [], [], []
    for k in ks:
        base = {s: solved(k, "none", s, limit)[1].makespan for s in ("greedy", "auto")}
        b0 = solved(k, "none", "auto", limit)[0]
        d_tb = int(round(b0.workload.cut_a_bytes[0] / 4 / b0.testbed.model.batch))
        for spec in specs:
            row = {
                "clients": b0.instance.num_clients,
                "codec": parse_codec(spec).spec,
                "bits/entry at the testbed's cut": f"{parse_codec(spec).bits_per_entry(d_tb):.2f}",
            }
            for solver in ("greedy", "auto"):
                b, res, _ = solved(k, spec, solver, limit)
                row[f"{solver} s"] = f"{res.makespan / 1e3:.2f}"
                row[f"{solver} vs none %"] = f"{100 * (res.makespan / base[solver] - 1):+.1f}"
            b, res, _ = solved(k, spec, "auto", limit)
            row["auto status"] = res.status
            row["chain bound s"] = f"{res.bounds.get('chain', float('nan')) / 1e3:.2f}"
            row["helper-load bound s"] = f"{res.bounds.get('load_ip', float('nan')) / 1e3:.2f}"
            rows.append(row)
            if k is None and spec != "none":  # per client device class, the full testbed
                w0, w = b0.workload, b.workload
                encode = w.head_fwd_ms - w0.head_fwd_ms
                up_saved = np.nanmean(
                    (w0.cut_a_bytes - w.cut_a_bytes)[:, None] * 8.0 / (w.uplink_mbps * 1e6) * 1e3, axis=1
                )
                t1 = np.nanmean(b.instance.release, axis=1) - np.nanmean(b0.instance.release, axis=1)
                up = np.nanmean(w.uplink_mbps, axis=1)
                decode = np.nanmean(w.body_fwd_ms - w0.body_fwd_ms, axis=0)
                for dev in dict.fromkeys(w.client_devices):
                    m = np.array([c == dev for c in w.client_devices])
                    dev_rows.append(
                        {
                            "codec": parse_codec(spec).spec,
                            "client device": DEVICE_NAMES.get(dev, dev),
                            "clients": int(m.sum()),
                            "uplink Mbit/s": f"{up[m].mean():.1f}",
                            "encode ms": f"{encode[m].mean():.0f}",
                            "upload saved ms": f"{up_saved[m].mean():.0f}",
                            "T1 change ms (mean)": f"{t1[m].mean():+.0f}",
                            "clients with longer T1": f"{int((t1[m] > 0).sum())}/{int(m.sum())}",
                        }
                    )
                helper_rows.append(
                    {"codec": parse_codec(spec).spec}
                    | {
                        f"decode on {h} ms": f"{v:.0f}"
                        for h, v in dict(zip(w.helper_devices, decode)).items()
                    }
                )
    pd.DataFrame(rows).to_csv(out / "makespan.csv", index=False)
    devs = pd.DataFrame(dev_rows)
    devs.to_csv(out / "devices.csv", index=False)
    helpers = "Modelled decode on the helper (per client, batch of 128), added to its body forward:\n\n" + md(
        pd.DataFrame(helper_rows)
    )
    return md(pd.DataFrame(rows)), md(devs) + "\n\n" + helpers


# --- E: training ---------------------------------------------------------------------------------------------------
TRAIN_ROWS: list[pd.DataFrame] = []


@torch.no_grad()
def coded_accuracy(parts, codec, x, y, seed: int) -> float:
    """Test accuracy with the codec between head and body, as a deployment would infer."""
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    for s in range(0, len(y), 1024):
        h, _ = roundtrip(codec, parts["head"](x[s : s + 1024]), gen)
        correct += int((parts["tail"](parts["body"](h)).argmax(1) == y[s : s + 1024]).sum())
    return correct / len(y)


def train_one(
    data: str, a: int, spec: str, k: int, seed: int, rounds: int, target: float, limit: float, scratch: Path
) -> dict:
    """One training run. With a codec it runs round by round (``resume``, which replays the run exactly) so that
    the global model can also be evaluated with the codec between head and body after every round."""
    b, res, comp = solved(k, spec, "auto", limit)
    cfg = TrainConfig(
        dataset=data,
        model="cnn",
        cuts=CutPoints(a=a, b=5),
        strategy="splitfed1",
        batch_size=16,
        lr=0.01,
        optimizer="adam",
        target_accuracy=target,
        threads=1,
    )
    ds = dataset(data, seed)
    t0 = time.process_time()
    coded = []
    if comp.active:
        folder = scratch / f"{data}-{a}-{comp.codec.name}-{seed}"
        shutil.rmtree(folder, ignore_errors=True)
        for r_ in range(1, rounds + 1):
            r = run_training(
                b.instance,
                b.workload,
                res.schedule,
                SimConfig(rounds=r_, seed=seed),
                cfg,
                compression=comp,
                dataset=ds,
                out=folder,
                resume=r_ > 1,
            )
            if r.diverged:
                break
            coded.append(coded_accuracy(r.parts, comp.codec, ds.x_test, ds.y_test, seed))
        shutil.rmtree(folder, ignore_errors=True)
    else:
        r = run_training(
            b.instance,
            b.workload,
            res.schedule,
            SimConfig(rounds=rounds, seed=seed),
            cfg,
            compression=comp,
            dataset=ds,
        )
    s = r.summary()
    df = r.rounds[["round", "start_ms", "round_time_ms", "train_loss", "test_accuracy"]].copy()
    df["coded_accuracy"] = coded if comp.active else df["test_accuracy"]
    ends = (df["start_ms"] + df["round_time_ms"]).to_numpy(dtype=float)

    def first(acc) -> tuple[int | None, float | None]:
        hit = np.flatnonzero(np.asarray(acc, dtype=float) >= target)
        return (int(hit[0]) + 1, float(ends[hit[0]])) if len(hit) else (None, None)

    (n_dense, t_dense), (n_coded, t_coded) = first(df["test_accuracy"]), first(df["coded_accuracy"])
    assert t_dense == s["time_to_accuracy_ms"]
    out = {
        "data": data,
        "a": a,
        "codec": comp.codec.spec,
        "name": comp.codec.name,
        "seed": seed,
        "K": k,
        "final": s["final_accuracy"],
        "coded": float(df["coded_accuracy"].iloc[-1]),
        "rounds_dense": n_dense,
        "tta_dense": t_dense,
        "rounds_coded": n_coded,
        "tta_coded": t_coded,
        "round_ms": float(df["round_time_ms"].mean()),
        "planned_ms": res.makespan,
        "cpu_s": time.process_time() - t0,
        "diverged": r.diverged,
    }
    for key in ("data", "a", "codec", "seed", "K"):
        df[key] = out[key]
    TRAIN_ROWS.append(df)
    print(
        f"  [E] {data} a={a} {out['codec']} seed={seed}: final {out['final']:.3f} (codec at inference "
        f"{out['coded']:.3f}); rounds to {target:.0%}: {n_dense} ({n_coded}); virtual {ends[-1] / 1e3:.0f}s;"
        f" cpu {out['cpu_s']:.0f}s" + (f" DIVERGED {r.diverged}" if r.diverged else ""),
        flush=True,
    )
    return out


def part_e(
    runs: dict[str, dict],
    cuts: list[int],
    k: int,
    budget: float,
    seed_list: list[int],
    limit: float,
    data_cache: dict,
    scratch: Path,
) -> str:
    rows = []
    for data, opt in runs.items():
        for a in cuts:
            d = entries(data, a, data_cache)
            specs = budget_settings(budget, d)
            results = {}
            for name in TRAIN_CODECS:
                spec = pick(specs, name)
                results[name] = [
                    train_one(data, a, spec, k, s, opt["rounds"], opt["target"], limit, scratch)
                    for s in seed_list
                ]
            d_tb = int(round(solved(k, "none", "auto", limit)[0].workload.cut_a_bytes[0] / 4 / 128))
            for name in TRAIN_CODECS:
                rs = results[name]
                codec = parse_codec(rs[0]["codec"])
                t = f"{opt['target']:.0%}"

                def reach(key: str, rs=rs) -> str:
                    n = sum(r[key] is not None for r in rs)
                    return "" if n == len(rs) else f" ({n}/{len(rs)} reached)"

                rows.append(
                    {
                        "data": data,
                        "cut a (d)": f"{a} ({d})",
                        "codec": codec.spec,
                        "bits/entry (cnn / clock)": f"{codec.bits_per_entry(d):.2f} / {codec.bits_per_entry(d_tb):.2f}",
                        "round s (virtual)": f"{rs[0]['round_ms'] / 1e3:.2f}",
                        "final acc % (library: uncompressed eval)": fmt([r["final"] for r in rs], 1, 100),
                        "final acc % (codec at inference)": fmt([r["coded"] for r in rs], 1, 100),
                        f"rounds to {t} (library)": fmt([r["rounds_dense"] for r in rs], 1)
                        + reach("rounds_dense"),
                        f"rounds to {t} (codec at inference)": fmt([r["rounds_coded"] for r in rs], 1)
                        + reach("rounds_coded"),
                        f"virtual s to {t} (library)": fmt([r["tta_dense"] for r in rs], 0, 1e-3),
                        f"virtual s to {t} (codec at inference)": fmt([r["tta_coded"] for r in rs], 0, 1e-3),
                    }
                )
    return md(pd.DataFrame(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smoke run (~1.5 min): digits only, one seed, few rounds"
    )
    ap.add_argument(
        "--out", default="/tmp/reproduce_compression", help="folder for the csv files and tables.md"
    )
    ap.add_argument("--parts", default="ABCDE", help="which parts to run (default ABCDE)")
    ap.add_argument("--seeds", type=int, default=2, help="training seeds on digits (full run; default 2)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.time(), time.process_time()
    if args.quick:
        b_opts = dict(d=2**16, draws=1, qs=[2])
        c_opts = dict(datasets={"digits": [1, 3]}, budgets=[2.5], seed_list=[0], warmup=100)
        d_opts = dict(
            specs=[
                "none",
                "fp16",
                "quant:bits=2",
                "topk:r=0.0568182",
                "randtopk:r=0.0568182,alpha=0.1",
                "ms:r=0.015625,bits=2",
            ],
            ks=[None, 6],
            limit=3.0,
        )
        e_runs, e_seeds = {"digits": dict(rounds=4, target=0.9)}, [0]
    else:
        b_opts = dict(d=2**20, draws=3, qs=[2, 4])
        c_opts = dict(
            datasets={"digits": [1, 3], "mnist5k": [1, 3, 4]},
            budgets=[2.5, 4, 8],
            seed_list=[0, 1, 2],
            warmup=100,
        )
        d_opts = dict(
            specs=[
                "none",
                "fp16",
                "quant:bits=2",
                "quant:bits=4",
                "topk:r=0.0568182",
                "randtopk:r=0.0568182,alpha=0.1",
                "ms:r=0.015625,bits=2",
                "ms:r=0.01,bits=2",
            ],
            ks=[None, 6],
            limit=10.0,
        )
        e_runs, e_seeds = {"digits": dict(rounds=12, target=0.9), "mnist5k": dict(rounds=5, target=0.9)}, None
    limit = d_opts["limit"]
    k_train = 6
    sections = [
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/reproduce_compression.py', *sys.argv[1:]])}`"
        " (torch threads 1)."
    ]

    def emit(title: str, body: str) -> None:
        sections.append(f"### {title}\n\n{body}")
        print("\n" + sections[-1], flush=True)

    if "A" in args.parts:
        emit("A. The paper's arithmetic, computed by `pslsched.core.codecs`", part_a())
    if "B" in args.parts:
        print("\n== B. the paper's synthetic error protocol", flush=True)
        emit(
            f"B. The paper's error protocol: relu(N(0,1)), d = {b_opts['d']:,}, {b_opts['draws']} draw(s) "
            "(2-norm of x - x', mean)",
            part_b(**b_opts),
        )
    if "C" in args.parts:
        print("\n== C. error at equal budgets on real smashed data (codec_table)", flush=True)
        table, ratios = part_c(out=out, **c_opts)
        n = len(c_opts["seed_list"])
        emit(
            f"C. Equal budgets on real smashed data: cnn trained {c_opts['warmup']} steps, 256 test samples, "
            f"{n} seed(s) (mean [min, max])",
            table,
        )
        emit("C. Error ratios to MS at the same budget (per seed, then mean [min, max])", ratios)
    if "D" in args.parts:
        print("\n== D. planned makespan per codec on the default testbed", flush=True)
        table, devs = part_d(out=out, **d_opts)
        emit(
            f"D. Planned makespan, default testbed (ResNet-101 profile, cut a=2) and scaled to 6 clients; "
            f"solvers re-run per codec ({limit:g} s)",
            table,
        )
        emit(
            "D. Per client device class (20 clients): modelled encode on the client vs upload time saved "
            "(T1 = head forward + encode + upload of cut a)",
            devs,
        )
    if "E" in args.parts:
        print("\n== E. training at equal budget", flush=True)
        seed_list = e_seeds or list(range(args.seeds))
        tables = []
        data_cache: dict = {}
        for data, opt in e_runs.items():
            sl = seed_list if data == "digits" else [0]
            tables.append(part_e({data: opt}, [1, 3], k_train, 2.5, sl, limit, data_cache, out / "scratch"))
            emit(
                f"E. Training at about 2.5 bits per entry: {data}, {opt['rounds']} rounds (local epochs), "
                f"{len(sl)} seed(s), default testbed scaled to {k_train} clients, splitfed1, Adam lr 0.01, "
                "batch 16, cnn b=5",
                tables[-1],
            )
        pd.concat(TRAIN_ROWS).to_csv(out / "training.csv", index=False)
    wall, cpu = time.time() - t0, time.process_time() - c0
    sections.append(f"Total: {cpu / 60:.1f} min CPU, {wall / 60:.1f} min wall (torch threads 1).")
    print(sections[-1])
    (out / "tables.md").write_text("\n\n".join(sections) + "\n")
    print(f"wrote {out}/tables.md and the csv files")


if __name__ == "__main__":
    main()

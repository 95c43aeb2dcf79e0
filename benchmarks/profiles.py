"""Benchmark of model profiles: the calibration error and the measurement's run-to-run spread on this machine.

    python benchmarks/profiles.py --runs 3 --batch 16 --repeats 5 --threads 1 --out /tmp/prof_bench \
        --md /tmp/results_profiles.md

Every run measures the four anchor architectures here in a fresh process (``sched profile measure``, SGD update,
exactly what ``sched profile calibrate`` measures), then calibrates on one anchor model and predicts the other
(ResNet-101 <-> VGG-19, on CIFAR-10 and on MNIST) with the library calls ``sched profile calibrate --from ...
--check ... --check-from ...`` makes. The table of the first run is reported, with the range over the runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pslsched.models.anchors import ANCHOR_MODELS  # noqa: E402
from pslsched.profiles import load_profile  # noqa: E402
from pslsched.profiles.calibrate import calibrate, calibration_error  # noqa: E402
from pslsched.profiles.store import read_meta  # noqa: E402

PAIRS = [
    ("resnet101_cifar10", "vgg19_cifar10"),
    ("vgg19_cifar10", "resnet101_cifar10"),
    ("resnet101_mnist", "vgg19_mnist"),
    ("vgg19_mnist", "resnet101_mnist"),
]
SCHED = str(Path(sys.executable).with_name("sched"))


def measure(anchor: str, out: Path, args) -> float:
    a = ANCHOR_MODELS.get(anchor)
    cmd = [
        SCHED, "profile", "measure", "--model", a.architecture,
        "--input-shape", ",".join(map(str, a.input_shape)), "--batch", str(args.batch),
        "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--optimizer", "sgd", "-o", str(out),
    ]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/tmp/prof_bench")
    p.add_argument("--md", default=None, help="write the markdown section here")
    p.add_argument("--reuse", action="store_true", help="reuse measured CSVs already in --out")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, list[float]] = {a: [] for a in ANCHOR_MODELS.names()}
    if args.reuse and (out / "walls.json").is_file():
        walls = json.loads((out / "walls.json").read_text())
    for run in range(args.runs):
        for anchor in ANCHOR_MODELS.names():
            csv = out / f"{anchor}_run{run}.csv"
            if args.reuse and csv.is_file():
                continue
            walls[anchor].append(measure(anchor, csv, args))
            print(f"run {run} {anchor}: {walls[anchor][-1]:.1f} s", flush=True)
    (out / "walls.json").write_text(json.dumps(walls))

    errors = []
    factors = []
    for run in range(args.runs):
        for fit, check in PAIRS:
            m_fit = out / f"{fit}_run{run}.csv"
            m_chk = out / f"{check}_run{run}.csv"
            cal = calibrate(
                load_profile(m_fit), load_profile(fit), read_meta(m_fit)["batch"], anchor_name=fit
            )
            for d, f in cal.factors.items():
                factors.append({"run": run, "anchor": fit, "device": d, "fwd": f.fwd, "bwd": f.bwd})
            table = calibration_error(
                cal, load_profile(m_chk), load_profile(check), read_meta(m_chk)["batch"]
            )
            table.insert(0, "run", run)
            table.insert(1, "fit", fit)
            table.insert(2, "predict", check)
            errors.append(table)
    err = pd.concat(errors, ignore_index=True)
    fac = pd.DataFrame(factors)
    err.to_csv(out / "errors.csv", index=False)
    fac.to_csv(out / "factors.csv", index=False)

    spread = []
    for anchor in ANCHOR_MODELS.names():
        tot_f, tot_b, iqr_f, iqr_b = [], [], [], []
        for run in range(args.runs):
            csv = out / f"{anchor}_run{run}.csv"
            prof, meta = load_profile(csv), read_meta(csv)
            dev = prof.devices["here"]
            tot_f.append(dev.forward(0, prof.num_layers))
            tot_b.append(dev.backward(0, prof.num_layers))
            per = meta["spread"]["per_block_iqr_rel"]
            iqr_f.append(np.median(per["fwd"]))
            iqr_b.append(np.median(per["bwd"]))
        tf, tb = np.array(tot_f), np.array(tot_b)
        spread.append(
            {
                "model": anchor,
                "fwd_ms": " / ".join(f"{v:.0f}" for v in tf),
                "fwd_range": (tf.max() - tf.min()) / np.median(tf),
                "bwd_ms": " / ".join(f"{v:.0f}" for v in tb),
                "bwd_range": (tb.max() - tb.min()) / np.median(tb),
                "block_iqr_fwd": float(np.median(iqr_f)),
                "block_iqr_bwd": float(np.median(iqr_b)),
                "wall_s": " / ".join(f"{w:.0f}" for w in walls[anchor]) if walls[anchor] else "-",
            }
        )
    md = render(err, fac, pd.DataFrame(spread), args)
    print(md)
    if args.md:
        Path(args.md).write_text(md)


def _pct(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{100 * v:+.0f}%"


def render(err: pd.DataFrame, fac: pd.DataFrame, spread: pd.DataFrame, args) -> str:
    lines = [
        "## Model profiles: calibration error and measurement spread",
        "",
        f"Measured on this machine (2 shared cores, loaded by other jobs), batch {args.batch}, {args.repeats} timed "
        f"runs after {args.warmup} warm-up, {args.threads} thread(s), SGD update; {args.runs} independent runs "
        "(fresh processes). Commands:",
        "",
        "```bash",
        "sched profile calibrate --anchor resnet101_cifar10 --check vgg19_cifar10 "
        f"--batch {args.batch} --repeats {args.repeats} --threads {args.threads} -o cal.json",
        f"python benchmarks/profiles.py --runs {args.runs} --batch {args.batch} --repeats {args.repeats} "
        f"--threads {args.threads} --md results_profiles.md   # all four anchors, both directions, every run",
        "```",
        "",
        "**Calibration error.** Factors fitted on one anchor model (this machine vs each anchor device, forward and "
        "backward+update separately, per sample; the anchor batch taken as 128) predict the other anchor model's "
        "per-device times. Columns: signed relative error of the whole-model forward and backward+update sums, "
        "and the median / 90th percentile of the absolute relative error of F+B over every segment [s, e) between "
        "meaningful cut points (every head, body and tail the scheduler can use), all from the first run; the last "
        "column is the range of the whole-model F+B error over all runs (fit and check measured back to back in "
        "each run).",
        "",
    ]
    first = err[err.run == 0]
    for (fit, check), rows in first.groupby(["fit", "predict"], sort=False):
        lines += [
            f"Fit on `{fit}`, predict `{check}`:",
            "",
            "| device | fwd factor | bwd factor | fwd total | bwd total | segments median | segments p90 | F+B total over runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows.itertuples():
            allruns = err[(err.fit == fit) & (err.predict == check) & (err.device == r.device)]
            fb = (allruns.pred_fwd_ms + allruns.pred_bwd_ms) / (allruns.true_fwd_ms + allruns.true_bwd_ms) - 1
            lines.append(
                f"| {r.device} | {r.fwd_factor:.2f} | {r.bwd_factor:.2f} | {_pct(r.fwd_err)} | {_pct(r.bwd_err)} "
                f"| {100 * r.seg_median_abs_err:.0f}% | {100 * r.seg_p90_abs_err:.0f}% "
                f"| {_pct(fb.min())} .. {_pct(fb.max())} |"
            )
        lines.append("")
    fr = fac.groupby(["anchor", "device"], sort=False).agg(
        fwd_min=("fwd", "min"), fwd_max=("fwd", "max"), bwd_min=("bwd", "min"), bwd_max=("bwd", "max")
    )
    lines += [
        "**Factors over the runs** (min .. max; a factor is the device's time per sample over this machine's):",
        "",
        "| anchor | device | fwd factor | bwd factor |",
        "|---|---|---:|---:|",
    ]
    for (anchor, dev), r in fr.iterrows():
        lines.append(
            f"| {anchor} | {dev} | {r.fwd_min:.2f} .. {r.fwd_max:.2f} | {r.bwd_min:.2f} .. {r.bwd_max:.2f} |"
        )
    lines += [
        "",
        "**Run-to-run spread of the measurement.** Whole-model sums of the per-block medians in each run (ms, "
        "batch as above), their range over the runs relative to the median, the median per-block inter-quartile "
        "range within a run, and the wall time of each `sched profile measure` run (s).",
        "",
        "| model | fwd ms per run | fwd range | bwd+upd ms per run | bwd+upd range | block IQR fwd | block IQR bwd | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in spread.itertuples():
        lines.append(
            f"| {r.model} | {r.fwd_ms} | {100 * r.fwd_range:.0f}% | {r.bwd_ms} | {100 * r.bwd_range:.0f}% "
            f"| {100 * r.block_iqr_fwd:.0f}% | {100 * r.block_iqr_bwd:.0f}% | {r.wall_s} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

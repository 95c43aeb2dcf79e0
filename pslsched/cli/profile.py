"""`sched profile`: show, import, measure a model here, calibrate against the anchor devices, scale a measured profile.

``measure`` and ``calibrate`` wire the split-model registry (``pslsched.models.zoo``) and the anchor
architectures to the profiles room's measurement (``pslsched.profiles.measure``, ``pslsched.profiles.calibrate``); see
docs/profiles.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pslsched.base.errors import InputError
from pslsched.base.limits import (
    MAX_DATASET_VALUES,
    MAX_MEASURE_BATCH,
    MAX_MEASURE_COUNT,
    MAX_THREADS,
    human_bytes,
)
from pslsched.profiles import (
    BUNDLED_PROFILES,
    SHIPPED_PROFILES,
    ProfileError,
    device_label,
    import_workbook,
    load_profile,
)

DEFAULT_SHAPE = (3, 32, 32)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "profile", help="show, import, measure (this machine), calibrate or scale a per-layer profile"
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="devices, layers, totals and meaningful cut points of a profile")
    show.add_argument(
        "profile", help=f"bundled name ({', '.join(BUNDLED_PROFILES + SHIPPED_PROFILES)}) or a CSV path"
    )
    show.add_argument("--layers", action="store_true", help="also list every layer of one device")
    show.add_argument("--device", help="the device --layers lists (default: the first profiled one)")
    show.set_defaults(handler=run_show)

    imp = actions.add_parser("import", help="convert a workbook (one sheet per device + 'memory') to a CSV")
    imp.add_argument("workbook", metavar="WORKBOOK.xlsx")
    imp.add_argument("-o", "--output", required=True, metavar="PROFILE.csv")
    imp.set_defaults(handler=run_import)

    mea = actions.add_parser(
        "measure",
        help="measure a split model on this machine: per-block fwd/bwd/update ms and sizes -> profile CSV",
        description="Time every block of a registered split model (or an anchor architecture: resnet101, "
        "vgg19) on this machine and write a profile CSV (device --device-name) plus PROFILE.meta.json "
        "(batch, machine, torch, threads, spread). Run it on the target device. See docs/profiles.md.",
    )
    mea.add_argument(
        "--model", required=True, help="registered split model (sched train --list) or resnet101/vgg19"
    )
    mea.add_argument("--input-shape", metavar="C,H,W", help="one sample's shape (default 3,32,32)")
    mea.add_argument("--classes", default="10", metavar="N", help="outputs of the model (default 10)")
    _timing_args(mea, batch="16", repeats="10", warmup="3")
    mea.add_argument(
        "--optimizer", choices=["adam", "sgd"], default="adam", help="timed update (default adam)"
    )
    mea.add_argument("--device-name", default="here", metavar="NAME", help="device column (default here)")
    mea.add_argument("-o", "--output", required=True, metavar="PROFILE.csv")
    mea.set_defaults(handler=run_measure)

    cal = actions.add_parser(
        "calibrate",
        help="measure an anchor model here and derive per-device speed factors (fwd, bwd) -> JSON",
        description="Measure the anchor's own architecture on this machine (same block rows as the anchor "
        "sheet) and derive, per anchor device, forward and backward speed factors (device time per sample over "
        "this machine's). --check measures another anchor model and reports how well the factors predict it.",
    )
    cal.add_argument("--anchor", required=True, help=f"anchor profile ({', '.join(BUNDLED_PROFILES)})")
    _timing_args(cal, batch="16", repeats="5", warmup="2")
    cal.add_argument(
        "--from", dest="from_csv", metavar="CSV", help="use this measured profile, do not measure"
    )
    cal.add_argument("--save-measured", metavar="CSV", help="also write the anchor model's measured profile")
    cal.add_argument("--check", metavar="ANCHOR", help="report the error on this other anchor model")
    cal.add_argument(
        "--check-from", metavar="CSV", help="measured profile of the --check model (no measuring)"
    )
    cal.add_argument(
        "--save-check-measured", metavar="CSV", help="also write the --check model's measured profile"
    )
    cal.add_argument("-o", "--output", required=True, metavar="CALIBRATION.json")
    cal.set_defaults(handler=run_calibrate)

    sca = actions.add_parser(
        "scale",
        help="turn a measured profile into one per anchor device with a calibration's factors",
    )
    sca.add_argument("profile", metavar="PROFILE.csv", help="a measured profile (one device)")
    sca.add_argument(
        "--factors", required=True, metavar="CALIBRATION.json", help="from sched profile calibrate"
    )
    sca.add_argument("--device", help="the measured device, if the profile has several")
    sca.add_argument(
        "--devices", metavar="D1,D2", help="only these anchor devices (default: every calibrated one)"
    )
    sca.add_argument("-o", "--output", required=True, metavar="OUT.csv")
    sca.set_defaults(handler=run_scale)


def _timing_args(parser: argparse.ArgumentParser, batch: str, repeats: str, warmup: str) -> None:
    parser.add_argument("--batch", default=batch, metavar="N", help=f"samples per batch (default {batch})")
    parser.add_argument(
        "--repeats", default=repeats, metavar="R", help=f"timed repetitions (default {repeats})"
    )
    parser.add_argument(
        "--warmup", default=warmup, metavar="W", help=f"untimed warm-up runs (default {warmup})"
    )
    parser.add_argument("--threads", metavar="T", help="torch threads, set explicitly (default: torch's)")


# ------------------------------------------------------------------------------------------------ parsing


def _int(field: str, text: str | None, minimum: int, maximum: int = MAX_MEASURE_COUNT) -> int | None:
    if text is None:
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InputError(field, f"must be a whole number >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise InputError(field, f"must be a whole number >= {minimum}, got {text!r}")
    if value > maximum:
        raise InputError(field, f"must be a whole number >= {minimum} and at most {maximum:,}, got {text!r}")
    return value


def _shape(text: str | None) -> tuple[int, int, int]:
    if text is None:
        return DEFAULT_SHAPE
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("--input-shape", f"expected C,H,W (three whole numbers >= 1), got {text!r}")
    return shape  # type: ignore[return-value]


def _out_file(field: str, path: str | None) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise InputError(field, f"{str(out)!r} is a folder")
    return out


def _timing(args: argparse.Namespace) -> dict:
    return {
        "batch": _int("--batch", args.batch, 1, MAX_MEASURE_BATCH),
        "repeats": _int("--repeats", args.repeats, 1),
        "warmup": _int("--warmup", args.warmup, 0),
        "threads": _int("--threads", args.threads, 1, MAX_THREADS),
    }


def _progress(label: str):
    """Progress on stderr; the first line comes after the first step ran (a model that fails prints only the error)."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if done == 1:
            print(f"measuring {label}: {total} runs", file=sys.stderr, flush=True)
        if tty:
            end = "\n" if done == total else ""
            print(f"\r  run {done}/{total}", end=end, file=sys.stderr, flush=True)

    return report


# ------------------------------------------------------------------------------------------------ actions


def run_show(args: argparse.Namespace) -> int:
    from pslsched.app.profiling import profile_path
    from pslsched.profiles.store import read_meta

    prof = load_profile(args.profile)
    meta = read_meta(profile_path(args.profile)) or {}
    layers_of = None
    if args.layers:
        layers_of = args.device or next((d for d, v in prof.devices.items() if v.profiled), None)
        if layers_of is None:
            raise InputError("--device", "the profile has no profiled device")
        try:
            prof.device(layers_of)
        except ProfileError as exc:
            raise InputError("--device", str(exc)) from None
    print(f"profile {prof.name}: {prof.num_layers} layers, weights {prof.weights_kb.sum() / 1024:.1f} MB")
    _print_meta(meta)
    print(f"{'device':<30}{'fwd ms':>10}{'bwd+upd ms':>12}  status")
    for name, dev in prof.devices.items():
        if not dev.profiled:
            status = "not profiled (all zeros)"
        elif dev.aggregated:
            status = f"block-aggregated; meaningful cuts {dev.safe_cuts()}"
        else:
            status = "per layer"
        print(
            f"{device_label(name):<30}{dev.forward(0, prof.num_layers):>10.1f}"
            f"{dev.backward(0, prof.num_layers):>12.1f}  {status}"
        )
    if layers_of is not None:
        name, dev = layers_of, prof.device(layers_of)
        blocks = meta.get("blocks") or meta.get("measured", {}).get("blocks") or []
        print(f"\nlayers of {name}:")
        print(
            f"{'#':>3}  {'block':<14}{'fwd ms':>11}{'bwd ms':>11}{'upd ms':>10}{'act KB':>12}{'weights KB':>13}"
        )
        for i in range(prof.num_layers):
            label = str(blocks[i]) if i < len(blocks) else ""
            print(
                f"{i:>3}  {label:<14}{dev.fwd_ms[i]:>11.3f}{dev.bwd_ms[i]:>11.3f}{dev.update_ms[i]:>10.3f}"
                f"{prof.activation_kb[i]:>12.1f}{prof.weights_kb[i]:>13.1f}"
            )
    return 0


def _print_meta(meta: dict) -> None:
    measured = meta.get("measured", meta) if meta.get("kind") == "scaled" else meta
    if measured.get("kind") != "measured":
        return
    shape = "x".join(str(d) for d in measured.get("input_shape", []))
    print(
        f"measured  model {measured.get('model')} on {shape}, batch {measured.get('batch')}, "
        f"{measured.get('optimizer')} update, median of {measured.get('repeats')} runs after "
        f"{measured.get('warmup')} warm-up, {measured.get('threads')} thread(s), torch {measured.get('torch')}"
    )
    machine = measured.get("machine", {})
    print(f"machine   {machine.get('cpu')} ({machine.get('cpu_count')} cpus), {machine.get('system')}")
    per_block = measured.get("spread", {}).get("per_block_iqr_rel", {})
    if per_block.get("fwd"):
        med = {k: 100 * float(np.median(v)) for k, v in per_block.items() if v}
        print(
            f"spread    per block (IQR / median over the runs, median over blocks): fwd {med.get('fwd', 0):.1f}%, "
            f"bwd {med.get('bwd', 0):.1f}%, update {med.get('update', 0):.1f}%"
        )
    totals = measured.get("totals", {})
    if totals:
        f, b = totals.get("fwd", {}), totals.get("bwd_update", {})
        print(
            f"          whole model per run: fwd IQR {100 * f.get('iqr_rel', 0):.1f}% "
            f"(range {100 * f.get('range_rel', 0):.1f}%), bwd+upd IQR {100 * b.get('iqr_rel', 0):.1f}% "
            f"(range {100 * b.get('range_rel', 0):.1f}%)"
        )
    if meta.get("kind") == "scaled":
        cal = meta.get("calibration", {})
        print(
            f"scaled    to the anchor devices with factors from {cal.get('anchor')} "
            f"(calibrated at batch {cal.get('measured_batch', 0):g}); the profile is for batch {meta.get('batch')}"
        )
    else:
        print(f"use       model: {{profile: <this csv>, batch: {measured.get('batch')}}}")


def run_import(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and out.is_dir():
        raise InputError("--output", f"{str(out)!r} is a folder")
    frame = import_workbook(args.workbook, out)
    print(f"wrote {out}: {frame['device'].nunique()} devices x {frame['layer_index'].nunique()} layers")
    return 0


def run_measure(args: argparse.Namespace) -> int:
    from pslsched.app.profiling import measure_model
    from pslsched.profiles.store import write_profile

    timing = _timing(args)
    shape = _shape(args.input_shape)
    classes = _int("--classes", args.classes, 1)
    values = int(timing["batch"]) * int(np.prod(shape, dtype=object))
    if values > MAX_DATASET_VALUES:
        raise InputError(
            "--batch",
            f"a batch of {timing['batch']:,} samples of {'x'.join(map(str, shape))} is {values:,} values "
            f"(~{human_bytes(4 * values)} as float32, before the model's activations); the limit is "
            f"{MAX_DATASET_VALUES:,} values",
        )
    out = _out_file("--output", args.output)
    if not args.device_name.strip():
        raise InputError("--device-name", "must not be empty")
    meas = measure_model(
        args.model, shape, classes, timing, args.optimizer, args.device_name, "--model", _progress
    )
    csv, side = write_profile(meas.frame, meas.meta, out)
    frame, meta = meas.frame, meas.meta
    spread = meta["spread"]["per_block_iqr_rel"]["fwd"]
    print(
        f"{'#':>3}  {'block':<14}{'fwd ms':>10}{'bwd ms':>10}{'upd ms':>9}{'act KB':>11}{'weights KB':>12}{'fwd IQR':>9}"
    )
    for i, row in frame.iterrows():
        print(
            f"{i:>3}  {meta['blocks'][i]:<14}{row.fwd_ms:>10.3f}{row.bwd_ms:>10.3f}{row.update_ms:>9.3f}"
            f"{row.activation_kb:>11.1f}{row.weights_kb:>12.1f}{100 * spread[i]:>8.1f}%"
        )
    tot = meta["totals"]
    print(
        f"total     fwd {frame.fwd_ms.sum():.3f} ms, bwd+upd {frame.bwd_ms.sum() + frame.update_ms.sum():.3f} ms "
        f"(sums of the block medians), batch {meta['batch']}, {meta['threads']} thread(s)"
    )
    print(
        f"per run   whole-model IQR fwd {100 * tot['fwd']['iqr_rel']:.1f}%, "
        f"bwd+upd {100 * tot['bwd_update']['iqr_rel']:.1f}% (a busy machine shows here first)"
    )
    print(f"wrote {csv} and {side}  (testbed: model: {{profile: {csv}, batch: {meta['batch']}}})")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from pslsched.app.profiling import anchor_measurement
    from pslsched.models.anchors import ANCHOR_MODELS
    from pslsched.profiles.calibrate import calibrate, calibration_error, write_calibration
    from pslsched.profiles.store import write_profile

    timing = _timing(args)
    anchor = ANCHOR_MODELS.get(args.anchor, "--anchor")
    check = ANCHOR_MODELS.get(args.check, "--check") if args.check else None
    if check is not None and check.profile == anchor.profile:
        raise InputError("--check", "must be another anchor model than --anchor")
    if args.check_from and check is None:
        raise InputError("--check-from", "needs --check ANCHOR")
    out = _out_file("--output", args.output)
    save = _out_file("--save-measured", args.save_measured)
    save_check = _out_file("--save-check-measured", args.save_check_measured)
    prof, batch, meta, meas = anchor_measurement(anchor, args.from_csv, "--from", timing, _progress)
    if save is not None and meas is not None:
        write_profile(meas.frame, meta, save)
    cal = calibrate(prof, load_profile(anchor.profile), batch, anchor_name=anchor.profile, measurement=meta)
    print(
        f"calibration against {anchor.profile} (this machine at batch {batch:g}, anchor batch {cal.anchor_batch:g})"
    )
    print(f"{'device':<12}{'fwd factor':>12}{'bwd factor':>12}")
    for name, f in cal.factors.items():
        print(f"{name:<12}{f.fwd:>12.3f}{f.bwd:>12.3f}")
    if cal.not_profiled:
        print(f"no factor (not profiled): {', '.join(cal.not_profiled)}")
    if check is not None:
        cprof, cbatch, cmeta, cmeas = anchor_measurement(
            check, args.check_from, "--check-from", timing, _progress
        )
        if save_check is not None and cmeas is not None:
            write_profile(cmeas.frame, cmeta, save_check)
        table = calibration_error(cal, cprof, load_profile(check.profile), cbatch)
        cal.check = {
            "anchor": check.profile,
            "measured_batch": cbatch,
            "measurement": cmeta,
            "rows": table.to_dict(orient="records"),
        }
        print(f"\nerror predicting {check.profile} (relative, predicted vs anchor sheet):")
        print(_error_table(table))
    write_calibration(cal, out)
    print(f"wrote {out}")
    return 0


def _error_table(table) -> str:
    lines = [f"{'device':<12}{'fwd total':>11}{'bwd total':>11}{'segments median':>17}{'p90':>8}"]
    for r in table.itertuples():
        lines.append(
            f"{r.device:<12}{100 * r.fwd_err:>+10.1f}%{100 * r.bwd_err:>+10.1f}%"
            f"{100 * r.seg_median_abs_err:>16.1f}%{100 * r.seg_p90_abs_err:>7.1f}%"
        )
    return "\n".join(lines)


def run_scale(args: argparse.Namespace) -> int:
    from pslsched.app.profiling import scaled_profile
    from pslsched.profiles.store import write_profile

    out = _out_file("--output", args.output)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    prof, cal, frame, meta = scaled_profile(args.profile, args.factors, device=args.device, devices=devices)
    write_profile(frame, meta, out)
    n_dev = frame["device"].nunique()
    batch = meta["batch"]
    hint = f"; testbed: model: {{profile: {out}, batch: {batch}}}" if batch else ""
    print(f"wrote {out}: {n_dev} devices x {prof.num_layers} layers{hint}")
    if batch and cal.measured_batch and float(batch) != float(cal.measured_batch):
        print(
            f"note: measured at batch {batch}, calibrated at batch {cal.measured_batch:g} (per-sample scaling assumed)"
        )
    return 0

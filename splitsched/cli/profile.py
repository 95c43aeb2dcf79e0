"""`sched profile`: inspect a per-layer profile, or import the anchor's spreadsheet layout into a profile CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from profiles import BUNDLED_PROFILES, import_workbook, load_profile
from splitsched.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="show a per-layer profile, or import a spreadsheet into a profile CSV")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="devices, layers, totals and meaningful cut points of a profile")
    show.add_argument("profile", help=f"bundled name ({', '.join(BUNDLED_PROFILES)}) or a CSV path")
    show.set_defaults(handler=run_show)
    imp = actions.add_parser("import", help="convert a workbook (one sheet per device + 'memory') to a CSV")
    imp.add_argument("workbook", metavar="WORKBOOK.xlsx")
    imp.add_argument("-o", "--output", required=True, metavar="PROFILE.csv")
    imp.set_defaults(handler=run_import)


def run_show(args: argparse.Namespace) -> int:
    prof = load_profile(args.profile)
    print(f"profile {prof.name}: {prof.num_layers} layers, weights {prof.weights_kb.sum() / 1024:.1f} MB")
    print(f"{'device':<12}{'fwd ms':>10}{'bwd+upd ms':>12}  status")
    for name, dev in prof.devices.items():
        if not dev.profiled:
            status = "not profiled (all zeros)"
        elif dev.aggregated:
            status = f"block-aggregated; meaningful cuts {dev.safe_cuts()}"
        else:
            status = "per layer"
        print(
            f"{name:<12}{dev.forward(0, prof.num_layers):>10.1f}{dev.backward(0, prof.num_layers):>12.1f}  {status}"
        )
    return 0


def run_import(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and out.is_dir():
        raise InputError("--output", f"{str(out)!r} is a folder")
    frame = import_workbook(args.workbook, out)
    print(f"wrote {out}: {frame['device'].nunique()} devices x {frame['layer_index'].nunique()} layers")
    return 0

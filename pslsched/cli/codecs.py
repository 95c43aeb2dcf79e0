"""`sched codecs`: every codec at a few settings on real smashed data (bits, bytes saved, error, gradient cosine)."""

from __future__ import annotations

import argparse

from pslsched.base.errors import InputError
from pslsched.base.limits import MAX_SEED, MAX_WARMUP_STEPS
from pslsched.cli.common import atomic_dir, positive_float, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "codecs",
        help="compare the smashed-data codecs on real activations of a split model",
        description="For a model, dataset and cut: bits per entry, % of fp32 saved, relative L2 error of the "
        "decoded activations and the cosine between the client's gradient with and without each codec.",
    )
    p.add_argument("--dataset", default="digits", help="dataset (default digits)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--model", help="split model (default: the dataset's)")
    p.add_argument("--cut", type=int, metavar="A", help="cut point a (default: the model's)")
    p.add_argument("--codec", action="append", metavar="SPEC", help="a setting to measure (repeatable)")
    p.add_argument(
        "--budget",
        type=positive_float("--budget"),
        metavar="BITS",
        help="line every codec up at BITS per entry",
    )
    p.add_argument("--samples", type=positive_int("--samples"), default=256, metavar="N")
    p.add_argument(
        "--warmup-steps", type=int, default=100, metavar="N", help="train the model first (default 100)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write codecs.csv")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pslsched.training.codec_study import codec_table

    if not 0 <= args.warmup_steps <= MAX_WARMUP_STEPS:
        raise InputError("--warmup-steps", f"must be in [0, {MAX_WARMUP_STEPS:,}], got {args.warmup_steps:,}")
    if not 0 <= args.seed <= MAX_SEED:
        raise InputError("--seed", f"must be a whole number in [0, 2^63), got {args.seed}")
    if args.codec and args.budget is not None:
        raise InputError("--budget", "give either --codec settings or a --budget, not both")
    table, info = codec_table(
        dataset=args.dataset,
        model=args.model,
        cut=args.cut,
        settings=args.codec,
        budget=args.budget,
        samples=args.samples,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        data_dir=args.data_dir,
    )
    print(
        f"smashed data: {info['model']} on {info['dataset']} cut at {info['cut']}, {info['entries_per_sample']} "
        f"entries per sample, {info['samples']} test samples, after {info['warmup_steps']} training steps"
        + (" (post-ReLU, non-negative)" if info["relu_features"] else " (signed)")
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        with atomic_dir(args.out) as tmp:
            table.to_csv(tmp / "codecs.csv", index=False)
        print(f"\nwrote {args.out}/codecs.csv")
    return 0

"""The range every number the model accepts must lie in (docs/problem.md, "Ranges").

Values outside are input errors naming the field and the value. Inside, a value may still be numerically hard for
a back end (HiGHS, CP-SAT's integer scaling); the solvers then answer correctly or say ``unknown``, never crash.
"""

from __future__ import annotations

MAX_MS = 1e9  # any duration or latency: about 11.6 days
MAX_MB = 1e9  # memory demand or capacity: a petabyte
MAX_MBPS = 1e9  # a link rate: a petabit per second
MAX_KB = 1e12  # an activation or weight size in a profile
MAX_SCHEDULE_MS = 1e12  # a start or end time in a schedule JSON
MIN_MBPS = 1e-6  # a link rate must be at least this (1 bit/s)
MAX_GROUP = 100_000  # members of one client or helper group (count), and --clients (also sched generate's)
MAX_PAIRS = 2_000_000  # sched generate: clients x helpers (~1.1 kB of memory a pair: ~2 GB at the maximum)
PAIR_BYTES = 1100  # memory per (client, helper) pair while generating and writing an instance (measured)
MAX_BATCHES = 10_000  # batches per round: --batches-per-round, sched simulate --batches
MAX_CLIENT_BATCHES = 1_000_000  # clients x batches per round: the tasks a round's schedule and timeline hold
MAX_SEED = 2**63 - 1  # seeds are whole numbers in [0, 2^63)
MIN_FACTOR, MAX_FACTOR = 1e-6, 1e6  # straggler factors (factor, value, mean, median, scale) and drawn factors
MAX_SIGMA = 10.0  # straggler spreads (sigma)
MIN_ALPHA, MAX_ALPHA = 0.1, 1e6  # pareto's alpha (below 0.1 a draw overflows to infinity)
MIN_SPEED, MAX_SPEED = 1e-6, 1e6  # the measured clock's --speed (simulated ms per wall ms)
MIN_PROFILE_BATCH, MAX_PROFILE_BATCH = 1, 1e6  # --profile-batch: the batch size a profile's costs are for
MAX_DATA_FILE_BYTES = 2**30  # one data file (MNIST IDX, a CIFAR-10 batch), after decompressing a .gz
MAX_PICKLE_OPS = 1_000_000  # operations of a pickled CIFAR-10 python batch (a real one has ~40,000)
MAX_COUNT = 2**31 - 1  # a whole-number option with no smaller bound (batch size, eval_every): int32
MAX_THREADS = 1024  # torch threads (--threads)
MAX_MEASURE_BATCH = 1024  # sched profile measure/calibrate --batch
MAX_MEASURE_COUNT = 1_000_000  # sched profile measure/calibrate: --repeats, --warmup, --classes
MAX_WARMUP_STEPS = 100_000  # sched codecs --warmup-steps: training steps before measuring
MAX_SWEEP_POINTS = 10_000  # points of a sweep's grid (sched sweep --max-points; raise it up to the next)
MAX_SWEEP_POINTS_LIMIT = 1_000_000  # the most --max-points may allow (~1 kB of memory and a file per point)
MAX_GRID_FILE_BYTES = 2**20  # a sweep's grid file
MAX_DATASET_VALUES = 2**28  # pixel values of a dataset's train + test images (~1 GiB as float32)


def check_client_batches(field: str, clients: int, batches: int, per_client: bool = True) -> None:
    """Refuse a round of more than ``MAX_BATCHES`` batches a client (unless not ``per_client``: a local epoch's)
    or ``MAX_CLIENT_BATCHES`` client-batches before any work (each is two helper tasks in the schedule, ~50 bytes
    of schedule JSON, and rows of the timeline)."""
    from pslsched.base.errors import InputError

    total = int(clients) * int(batches)
    if (per_client and batches > MAX_BATCHES) or total > MAX_CLIENT_BATCHES:
        raise InputError(
            field,
            f"{batches:,} batches per round x {clients:,} clients are {total:,} client-batches (a schedule of "
            f"~{human_bytes(50 * total)}); the limit is {MAX_BATCHES:,} batches per round and "
            f"{MAX_CLIENT_BATCHES:,} client-batches (docs/problem.md, Ranges)",
        )


def human_bytes(n: float) -> str:
    """``n`` bytes as a short size: ``"19.1 GB"``, ``"1.0 GiB"`` for powers of two of a GiB and up."""
    if n >= 2**30 and n % 2**30 == 0:
        return f"{n / 2**30:.1f} GiB"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


# Quick runs (README, "Quick runs"): PSLSCHED_CAP="rounds=2,time_limit=1,repeats=2" lowers every simulated or
# trained run's rounds, every solver's time limit (s) and every measurement's repeats to at most those values, for
# smoke-testing documented commands without editing them. Each capped setting is said once on stderr.
CAP_VARIABLE = "PSLSCHED_CAP"
CAP_KEYS = ("rounds", "time_limit", "repeats")
_said: set[str] = set()


def caps() -> dict[str, float]:
    """The caps ``PSLSCHED_CAP`` sets (none when it is unset or empty)."""
    import os

    from pslsched.base.errors import InputError

    text = os.environ.get(CAP_VARIABLE, "").strip()
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in CAP_KEYS:
            raise InputError(CAP_VARIABLE, f"unknown cap {key!r} (known: {', '.join(CAP_KEYS)})")
        try:
            out[key] = float(value)
        except ValueError:
            raise InputError(CAP_VARIABLE, f"{key} must be a number, got {value!r}") from None
        if not out[key] > 0:
            raise InputError(CAP_VARIABLE, f"{key} must be > 0, got {value!r}")
    return out


def capped(key: str, value: float | None) -> float | None:
    """``value`` lowered to ``PSLSCHED_CAP``'s cap on ``key`` (None, "no limit", becomes the cap)."""
    limit = caps().get(key)
    if limit is None or (value is not None and value <= limit):
        return value
    if key not in _said:
        import sys

        _said.add(key)
        print(f"{CAP_VARIABLE}: {key} capped at {limit:g}", file=sys.stderr)
    return int(limit) if key in ("rounds", "repeats") else limit

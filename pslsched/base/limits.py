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
MAX_GROUP = 100_000  # members of one client or helper group (count), and --clients

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

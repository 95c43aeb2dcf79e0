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

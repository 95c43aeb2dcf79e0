"""The shared vocabulary: instances, schedules, the validator, makespan evaluation and lower bounds."""

from splitsched.bounds import BoundReport, chain_bound, jackson_bound, lower_bounds, memory_infeasibility
from splitsched.errors import InputError
from splitsched.instance import Instance, read_instance, write_instance
from splitsched.result import SolveResult
from splitsched.schedule import Schedule, Task, read_schedule, write_schedule
from splitsched.timing import completion_times, earliest_schedule, makespan_of
from splitsched.validate import validate

__all__ = [
    "BoundReport",
    "InputError",
    "Instance",
    "Schedule",
    "SolveResult",
    "Task",
    "chain_bound",
    "completion_times",
    "earliest_schedule",
    "jackson_bound",
    "lower_bounds",
    "makespan_of",
    "memory_infeasibility",
    "read_instance",
    "read_schedule",
    "validate",
    "write_instance",
    "write_schedule",
]

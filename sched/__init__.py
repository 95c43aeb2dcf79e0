"""The shared vocabulary: instances, schedules, the validator, makespan evaluation and lower bounds."""

from sched.bounds import BoundReport, chain_bound, jackson_bound, lower_bounds, memory_infeasibility
from sched.errors import InputError
from sched.instance import Instance, read_instance, write_instance
from sched.result import SolveResult
from sched.schedule import Schedule, Task, read_schedule, write_schedule
from sched.timing import completion_times, earliest_schedule, makespan_of
from sched.validate import validate

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

"""The shared vocabulary: instances, schedules, the validator, makespan evaluation and lower bounds."""

from pslsched.base.errors import InputError
from pslsched.core.bounds import BoundReport, chain_bound, jackson_bound, lower_bounds, memory_infeasibility
from pslsched.core.instance import Instance, read_instance, write_instance
from pslsched.core.result import SolveResult
from pslsched.core.schedule import Schedule, Task, read_schedule, write_schedule
from pslsched.core.timing import completion_times, earliest_schedule, makespan_of
from pslsched.core.validate import validate

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

"""What stops a training run: the loss became NaN or infinite."""

from __future__ import annotations


class Diverged(Exception):
    """The loss became NaN or infinite (one message argument: SimPy re-creates the exception from its args)."""

    @classmethod
    def at(cls, round_: int, step: int, client: str, value: float) -> Diverged:
        return cls(f"loss became {value} in round {round_ + 1}, step {step + 1}, client {client}")

"""Errors raised for bad user input (the CLI turns these into one line and exit code 2)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the field (and the value) at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file, device or field."""


class InfeasibleInput(InputError):
    """Input that is well-formed but admits no plan (e.g. no cut a client can hold): exit code 3, not 2."""

    exit_code = 3

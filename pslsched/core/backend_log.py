"""The solver back ends' logs (HiGHS, CBC, CP-SAT): silent by default, to stderr when verbose (``--verbose``).

stdout belongs to the tool's own report. HiGHS writes from C straight to file descriptor 1: its banner ("Running
HiGHS ... Copyright ...") when the first ``Highs`` object of a process is constructed, before any option can be
set, and its solve log unless ``output_flag`` is off. So every ``Highs`` is constructed with fd 1 pointed at
/dev/null (at stderr when verbose), then configured: ``output_flag`` off, or, when verbose, ``log_to_console`` off
and the log handed to ``sys.stderr`` through highspy's logging callback. :class:`PulpHiGHS` is PuLP's in-process
HiGHS with that treatment; use it instead of ``pulp.HiGHS``. CBC (a child process writing to the inherited fd 1,
its log on only when verbose) runs inside :func:`c_stdout_redirected`; CP-SAT's worker (:mod:`pslsched.solvers.cpsat_client`)
logs to stderr through a log callback when verbose, and its stdout carries only the answers to this process.

The setting is process-wide: :func:`set_verbose`, or :func:`verbosity` for a scope (the CLI's ``--verbose``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pulp

_verbose = False


def verbose() -> bool:
    """Whether the back ends' logs are let through (to stderr)."""
    return _verbose


def set_verbose(flag: bool) -> None:
    """Let the back ends' logs through to stderr (True) or silence them (False, the default)."""
    global _verbose
    _verbose = bool(flag)


@contextlib.contextmanager
def verbosity(flag: bool) -> Iterator[None]:
    """:func:`set_verbose` for the duration of a ``with`` block; the previous setting is restored after it."""
    before = _verbose
    set_verbose(flag)
    try:
        yield
    finally:
        set_verbose(before)


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers (``fflush(NULL)``), so that nothing written by C code while fd 1 was
    redirected is emitted after it is restored."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library handle on this platform: nothing to flush
        pass


@contextlib.contextmanager
def c_stdout_redirected(to_stderr: bool | None = None) -> Iterator[None]:
    """Point file descriptor 1 (C code's stdout) at stderr (``to_stderr``, default: :func:`verbose`) or /dev/null
    for the duration of the block. Python's ``sys.stdout`` is flushed before, so the tool's own output is not
    affected; the block should not print to stdout itself. Process-wide (file descriptors are): meant for the
    short, single-threaded spans where a back end is started. A ``highspy.Highs()`` used directly is constructed
    inside it and then passed to :func:`configure_highs`."""
    to_stderr = _verbose if to_stderr is None else to_stderr
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(1)
    except OSError:  # fd 1 closed: nothing can leak onto it
        yield
        return
    target = os.dup(2) if to_stderr else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def _log_to_stderr(event) -> None:
    try:
        sys.stderr.write(event.message)
    except (OSError, ValueError):
        pass


def configure_highs(model, log: bool | None = None) -> None:
    """Silence a ``highspy.Highs`` object, or (``log``, default :func:`verbose`) send its log to ``sys.stderr``."""
    log = _verbose if log is None else log
    if log:
        model.setOptionValue("output_flag", True)
        model.setOptionValue("log_to_console", False)
        model.cbLogging += _log_to_stderr
    else:
        model.setOptionValue("output_flag", False)


class PulpHiGHS(pulp.HiGHS):
    """PuLP's in-process HiGHS writing nothing to stdout: its banner and log are dropped, or sent to stderr when
    verbose (or ``msg=True``)."""

    def createAndConfigureSolver(self, lp):  # noqa: N802 (PuLP's name)
        log = _verbose or bool(self.msg)
        # the banner is printed while the Highs object is constructed, before any option can be set
        with c_stdout_redirected(to_stderr=log):
            super().createAndConfigureSolver(lp)
        configure_highs(lp.solverModel, log)

    def actualSolve(self, lp):  # noqa: N802 (PuLP's name)
        """PuLP's solve; when HiGHS gives up on the numbers (e.g. coefficients near 1e30) PuLP's read-back of the
        solution fails: the model then counts as not solved, with no solution and no bound (never a crash)."""
        try:
            return super().actualSolve(lp)
        except (IndexError, ValueError, OverflowError, KeyError):
            lp.solverModel = None
            lp.assignStatus(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound)
            return pulp.LpStatusNotSolved

"""How long a solver call may run: a deterministic work budget and a wall-clock safety net.

Engine choice must not depend on the machine's speed or load (DESIGN §4), so the limit
that makes an engine give up and hand over to the next one is Z3's resource limit
(``rlimit``): a count of the solver's own work, the same on every machine for the same
query. ``--timeout`` is kept as a safety net in seconds; when it expires the property is
reported ``unknown`` with that reason (``WallClockTimeout`` ends the property's check), never
answered by another engine, which would make the method depend on the load.
Ctrl-C (``catch_ctrl_c``). Z3 installs a SIGINT handler of its own around its API calls; a
signal that lands there is consumed by Z3 (sometimes reported as an exhausted budget, which
would turn Ctrl-C into a wrong verdict) or lost. So Z3's handler is switched off, SIGINT is
recorded by ours, and a thread woken by the signal (``signal.set_wakeup_fd``) interrupts the
running Z3 call. Python raises KeyboardInterrupt wherever the main thread happens to be, and
that may be a Z3 object's ``__del__``, where exceptions are ignored; ``stop_if_interrupted``
(called around every solver call and by every progress report) raises it again where it
cannot be swallowed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, replace

import z3


class WallClockTimeout(Exception):
    """``--timeout`` expired during a solver call."""


@dataclass(frozen=True)
class Limits:
    rlimit: int  # Z3 resource units per solver call; 0: no limit
    timeout_ms: int  # wall-clock safety net per solver call; 0: none

    def scaled(self, rlimit: int) -> Limits:
        return replace(self, rlimit=rlimit)

    def apply(self, solver: z3.Solver) -> z3.Solver:
        if self.rlimit:
            solver.set("rlimit", self.rlimit)
        if self.timeout_ms:
            solver.set("timeout", self.timeout_ms)
        return solver

    def solver(self, logic: str | None = None) -> z3.Solver:
        return self.apply(z3.SolverFor(logic) if logic else z3.Solver())

    def check(self, solver: z3.Solver, *assumptions: z3.BoolRef) -> z3.CheckSatResult:
        """``solver.check``: sat, unsat, or unknown when the work budget ran out (or Z3 gave up);
        raises WallClockTimeout or KeyboardInterrupt instead of answering unknown for those."""
        stop_if_interrupted()
        r = solver.check(*assumptions)
        stop_if_interrupted()
        if r == z3.unknown:
            reason = solver.reason_unknown()
            if "timeout" in reason:
                raise WallClockTimeout(f"--timeout {self.timeout_ms / 1000:g} s expired in a solver call")
            if "interrupted" in reason:  # Ctrl-C ("canceled" is what an exhausted rlimit says)
                raise KeyboardInterrupt
        return r


UNLIMITED = Limits(0, 0)
_interrupted = False


_watcher: threading.Thread | None = None


def catch_ctrl_c() -> None:
    """Make Ctrl-C stop ``racefree check`` promptly and surely (see the module doc). Main thread only."""
    global _interrupted, _watcher
    _interrupted = False
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    z3.set_param("ctrl_c", False)
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_about_interrupts
    if _watcher is None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        _watcher = threading.Thread(target=_interrupt_z3_on_sigint, args=(read_end,), name="ctrl-c", daemon=True)
        _watcher.start()


def _quiet_about_interrupts(unraisable: sys.UnraisableHookArgs) -> None:
    """A KeyboardInterrupt raised in a destructor is ignored by Python; it is recorded, and raised
    again at a safe point, so it needs no report. Everything else is reported as usual."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt) and not _interrupted:
        sys.__unraisablehook__(unraisable)


def _interrupt_z3_on_sigint(read_end: int) -> None:
    while True:
        if signal.SIGINT in os.read(read_end, 64):
            z3.main_ctx().interrupt()


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def stop_if_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt


def was_interrupted() -> bool:
    """Ctrl-C was pressed: an error now (``Z3Exception: push canceled``) is its consequence."""
    return _interrupted

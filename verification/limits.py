"""How long a solver call may run: a deterministic work budget and a wall-clock safety net.

Engine choice must not depend on the machine's speed or load (DESIGN §4), so the limit
that makes an engine give up and hand over to the next one is Z3's resource limit
(``rlimit``): a count of the solver's own work, the same on every machine for the same
query. ``--timeout`` is kept as a safety net in seconds; when it expires the property is
reported ``unknown`` with that reason (``WallClockTimeout`` ends the property's check), never
answered by another engine, which would make the method depend on the load.
Ctrl-C during a solver call: see interrupts.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from .interrupts import stop_if_interrupted


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

"""Bounded model checking by incremental unrolling; the first SAT depth is the shortest counterexample."""

from __future__ import annotations

from collections.abc import Callable

import z3

from .encode import Encoding
from .result import Step


def bmc(enc: Encoding, prop: str, max_depth: int, *, timeout_ms: int = 0,
        on_depth: Callable[[int], None] | None = None) -> tuple[list[Step] | None, int, bool]:
    """Search depths 0..max_depth. Returns (trace or None, depth reached, timed_out)."""
    m = enc.machine
    inv = m.invariant(prop).expr
    solver = z3.Solver()
    if timeout_ms:
        solver.set("timeout", timeout_ms)
    frames = [enc.frame("@0")]
    choices: list[z3.ArithRef] = []
    solver.add(enc.init(frames[0]))
    for depth in range(max_depth + 1):
        if on_depth:
            on_depth(depth)
        solver.push()
        solver.add(z3.Not(enc.invariant(inv, frames[depth])))
        res = solver.check()
        if res == z3.sat:
            _lexmin(solver, choices)
            return _decode(enc, solver.model(), frames, choices), depth, False
        solver.pop()
        if res == z3.unknown:
            return None, depth - 1, True
        if depth == max_depth:
            break
        # The property held at every depth so far: assume it, which prunes the next query.
        solver.add(enc.invariant(inv, frames[depth]))
        nxt = enc.frame(f"@{depth + 1}")
        pick = z3.Int(f"action@{depth + 1}")
        solver.add(enc.step_relation(frames[depth], nxt, pick))
        frames.append(nxt)
        choices.append(pick)
    return None, max_depth, False


def _lexmin(solver: z3.Solver, choices: list[z3.ArithRef]) -> None:
    """Fix each step's action to the smallest index that still reaches the violation.

    Transitions are deterministic once the ground action is chosen, so this makes
    the reported trace canonical: the same spec gives the same trace whatever
    order Z3 happened to explore in. Leaves the solver SAT with that model.
    """
    for pick in choices:
        lo, hi = 0, solver.model().eval(pick, model_completion=True).as_long()
        while lo < hi:
            mid = (lo + hi) // 2
            solver.push()
            solver.add(pick <= mid)
            found = solver.check() == z3.sat
            if found:
                hi = solver.model().eval(pick, model_completion=True).as_long()
            solver.pop()
            if not found:
                lo = mid + 1
        solver.add(pick == lo)
        solver.check()


def _decode(enc: Encoding, model: z3.ModelRef, frames: list[list[z3.ExprRef]],
            choices: list[z3.ArithRef]) -> list[Step]:
    trace = [Step(None, (), enc.decode(model, frames[0]))]
    for k, pick in enumerate(choices, start=1):
        ga = enc.actions[model.eval(pick, model_completion=True).as_long()]
        trace.append(Step(ga.action.name, ga.args, enc.decode(model, frames[k])))
    return trace

"""Bounded model checking by incremental unrolling; the first SAT depth is the shortest counterexample.

The property is split into conjuncts and each distinct cone-of-influence slice
(coi.py) is unrolled on its own, in lockstep by depth, so the first violation
found is a shortest one overall while each query only mentions the cells that
matter. The winning action sequence is then made canonical (lexicographically
least) and re-played on the *full* encoding to recover every state, which the
interpreter re-checks afterwards (replay.py).
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from .coi import Slice, conjuncts, slice_property
from .encode import Encoding, literal
from .limits import Limits
from .result import STUTTER, Step


class _Unrolling:
    """One slice's incremental BMC solver."""

    def __init__(self, enc: Encoding, sl: Slice, limits: Limits) -> None:
        self.enc = enc
        self.cells = tuple(sl.cells)
        self.prop = sl.prop
        self.limits = limits
        self.solver = limits.solver()
        self.frames = [enc.frame("@0")]
        self.picks: list[z3.ArithRef] = []
        x = self.frames[0]
        self.solver.add(*[x[c] == literal(enc.init_values[c]) for c in self.cells])

    def violated_at(self, depth: int) -> z3.CheckSatResult:
        self.solver.push()
        self.solver.add(z3.Not(self.enc.substitute(self.prop, self.frames[depth])))
        res = self.limits.check(self.solver)
        if res != z3.sat:
            self.solver.pop()
        return res

    def extend(self, depth: int) -> None:
        # The conjunct held at every depth so far: assume it, which prunes the next query.
        self.solver.add(self.enc.substitute(self.prop, self.frames[depth]))
        nxt = self.enc.frame(f"@{depth + 1}")  # full length; only the slice's cells are constrained
        pick = z3.Int(f"action@{depth + 1}")
        self.solver.add(self.enc.step_relation(self.frames[depth], nxt, pick, self.cells))
        self.frames.append(nxt)
        self.picks.append(pick)


def bmc(enc: Encoding, formula: z3.BoolRef, max_depth: int, limits: Limits, *,
        on_depth: Callable[[int], None] | None = None, first_depth: int = 0) -> tuple[list[Step] | None, int, bool]:
    """Search depths first_depth..max_depth for a state violating ``formula`` (over the base
    frame); the depths before ``first_depth`` are only unrolled (an explicit search has already
    seen every state that shallow).

    Returns (trace or None, depth reached, work budget spent)."""
    slices: dict[str, Slice] = {}
    for part in conjuncts(formula):
        if not z3.is_true(part):
            sl = slice_property(enc, part)
            slices.setdefault(sl.key, sl)
    runs = [_Unrolling(enc, sl, limits) for sl in slices.values()]
    for depth in range(max_depth + 1):
        if on_depth:
            on_depth(depth)
        for run in runs if depth >= first_depth else ():
            res = run.violated_at(depth)
            if res == z3.sat:
                picks = lexmin(run.solver, run.picks)
                return full_trace(enc, picks)[0], depth, False
            if res == z3.unknown:
                return None, depth - 1, True
        if depth < max_depth:
            for run in runs:
                run.extend(depth)
    return None, max_depth, False


def lexmin(solver: z3.Solver, choices: list[z3.ArithRef]) -> list[int]:
    """Fix each step's action to the smallest index that still reaches the violation.

    Transitions are deterministic once the ground action is chosen, so this makes
    the reported trace canonical: the same spec gives the same trace whatever
    order Z3 happened to explore in.
    """
    out = []
    for pick in choices:
        # Descend: ask for a smaller value until there is none (usually one or two queries).
        best = solver.model().eval(pick, model_completion=True).as_long()
        while True:
            solver.push()
            solver.add(pick < best)
            found = solver.check() == z3.sat
            if found:
                best = solver.model().eval(pick, model_completion=True).as_long()
            solver.pop()
            if not found:
                break
        solver.add(pick == best)
        solver.check()
        out.append(best)
    return out


def full_trace(enc: Encoding, picks: list[int]) -> tuple[list[Step], z3.ModelRef, list[list[z3.ExprRef]]]:
    """Every full state along a fixed action sequence (-1 = a stutter), decoded from the full encoding."""
    solver = z3.Solver()
    frames = [enc.frame(f"#{k}") for k in range(len(picks) + 1)]
    solver.add(enc.init(frames[0]))
    for k, i in enumerate(picks):
        solver.add(enc.step_relation(frames[k], frames[k + 1], z3.IntVal(i), stutter="always"))
    if solver.check() != z3.sat:
        raise AssertionError("a slice counterexample does not extend to the full machine")
    model = solver.model()
    trace = [Step(None, (), enc.decode(model, frames[0]))]
    for k, i in enumerate(picks, start=1):
        name, args = (enc.actions[i].action.name, enc.actions[i].args) if i >= 0 else (STUTTER, ())
        trace.append(Step(name, args, enc.decode(model, frames[k])))
    return trace, model, frames


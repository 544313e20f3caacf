"""Houdini over a machine's own invariants: the largest subset that is inductive together.

A protocol spec states lemmas next to its properties (``invariant`` declarations that
hold for the design, e.g. "a READING slot has a holder"). Their conjunction is often
1-inductive where each property alone is not, and then it is a proof whose certificate
is spec text the user wrote. Houdini finds the largest inductive subset: start from
every candidate the initial state satisfies, and while some transition from a state
satisfying all of them breaks one, drop the ones it breaks. Dropping only ever removes
candidates, so the loop ends; the survivors are inductive by the final (unsat) query.
The engine re-checks the printed conjunction before it reports a proof.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from .encode import Encoding
from .limits import Limits


@dataclass
class Houdini:
    inductive: list[str]  # candidate names, in the order given
    complete: bool  # False when a query ran out of budget (then nothing is claimed)


def houdini(enc: Encoding, candidates: dict[str, z3.BoolRef], limits: Limits) -> Houdini:
    """``candidates`` are formulas over the base frame; returns the names of the largest inductive subset."""
    x, nxt = enc.base, enc.frame("'")
    s = limits.solver()
    s.add(enc.init(x))
    alive = []
    for name, f in candidates.items():
        r = limits.check(s, z3.Not(f))
        if r == z3.unknown:
            return Houdini([], False)
        if r == z3.unsat:
            alive.append(name)
    s = limits.solver()
    s.add(enc.domain_constraint(x), enc.domain_constraint(nxt), enc.step_relation(x, nxt, z3.Int("pick?")))
    nexts = {n: enc.substitute(candidates[n], nxt) for n in alive}
    while alive:
        s.push()
        s.add(*[candidates[n] for n in alive])
        s.add(z3.Or([z3.Not(nexts[n]) for n in alive]))
        r = limits.check(s)
        if r == z3.unsat:
            s.pop()
            return Houdini(alive, True)
        if r == z3.unknown:
            s.pop()
            return Houdini([], False)
        model = s.model()
        broken = {n for n in alive if z3.is_false(model.eval(nexts[n], model_completion=True))}
        s.pop()
        alive = [n for n in alive if n not in broken]
    return Houdini([], True)

"""Constrained Horn clauses over one predicate, solved by Spacer, with an independent model check.

A ``Chc`` is a transition system over a vector of variables: an initial
condition, step relations (over current and next variables plus free choice
variables), and a bad condition. ``solve`` asks Spacer for an inductive
invariant; ``check_invariant`` re-verifies one with a plain SMT solver.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import z3

from .limits import Limits


@dataclass
class Chc:
    cur: list[z3.ExprRef]
    nxt: list[z3.ExprRef]
    init: z3.BoolRef  # over cur (+ choice variables)
    steps: list[z3.BoolRef]  # over cur, nxt (+ choice variables)
    bad: z3.BoolRef  # over cur
    choices: list[z3.ExprRef] = field(default_factory=list)

    def key(self) -> str:
        """Equal keys = the same problem (variables are canonically named by the caller)."""
        text = "\n".join([self.init.sexpr(), self.bad.sexpr(), *sorted(s.sexpr() for s in self.steps)])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ChcAnswer:
    verdict: str  # "safe" (invariant found) | "unsafe" | "unknown"
    invariant: z3.BoolRef | None = None  # over cur, when safe


def solve(chc: Chc, limits: Limits) -> ChcAnswer:
    inv = z3.Function("Inv", *[v.sort() for v in chc.cur], z3.BoolSort())
    s = limits.solver("HORN")
    # Inlining rules makes Z3 translate the model back with existential
    # quantifiers over eliminated variables; we need a printable, ground invariant.
    s.set("xform.inline_eager", False)
    s.set("xform.inline_linear", False)

    def clause(body: z3.BoolRef, head: z3.BoolRef, bound: list[z3.ExprRef]) -> z3.BoolRef:
        implication = z3.Implies(body, head)
        return z3.ForAll(bound, implication) if bound else implication

    s.add(clause(chc.init, inv(*chc.cur), chc.cur + chc.choices))
    for step in chc.steps:
        s.add(clause(z3.And(inv(*chc.cur), step), inv(*chc.nxt), chc.cur + chc.nxt + chc.choices))
    s.add(clause(z3.And(inv(*chc.cur), chc.bad), z3.BoolVal(False), list(chc.cur)))
    res = limits.check(s)
    if res == z3.unsat:
        return ChcAnswer("unsafe")
    if res != z3.sat:
        return ChcAnswer("unknown")
    interp = s.model()[inv]
    body = interp.else_value() if isinstance(interp, z3.FuncInterp) else interp
    # Spacer's interpretation is over de Bruijn variables: Var(i) is the i-th argument.
    return ChcAnswer("safe", _quantifier_free(z3.substitute_vars(body, *chc.cur) if chc.cur else body))


def _quantifier_free(inv: z3.BoolRef) -> z3.BoolRef:
    """Spacer sometimes keeps an existential over an eliminated variable (``exists k. x == k + 1 and
    0 <= k <= 2``); over integers that is eliminable, and the certificate printer needs it gone."""
    if not _has_quantifier(inv):
        return inv
    goals = z3.Then("qe", "simplify")(inv)
    return z3.And([f for g in goals for f in g]) if len(goals) else inv  # type: ignore[return-value]


def _has_quantifier(e: z3.ExprRef) -> bool:
    return z3.is_quantifier(e) or any(_has_quantifier(c) for c in e.children())


def check_invariant(chc: Chc, inv: z3.BoolRef, limits: Limits) -> str | None:
    """None when ``inv`` is inductive for ``chc`` and excludes bad; otherwise what fails."""
    s = limits.solver()
    inv_next = z3.substitute(inv, *zip(chc.cur, chc.nxt, strict=True)) if chc.cur else inv

    def fails(*fs: z3.BoolRef) -> bool:
        s.push()
        s.add(*fs)
        r = limits.check(s)
        s.pop()
        return r != z3.unsat

    if fails(chc.init, z3.Not(inv)):
        return "the initial states do not satisfy the invariant"
    if fails(inv, chc.bad):
        return "the invariant does not exclude the bad states"
    for step in chc.steps:
        if fails(inv, step, z3.Not(inv_next)):
            return "the invariant is not preserved by a step"
    return None

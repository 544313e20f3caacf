"""Unbounded proofs: Z3 Spacer (constrained Horn clauses) per property slice, k-induction as fallback.

For each conjunct of the grounded property, its cone-of-influence slice (coi.py)
is posed as CHCs over one predicate ``Inv``:

    init(x)                                        -> Inv(x)
    Inv(x) & dom(x) & guard_a(x) & x' = update_a(x)   -> Inv(x')   for each ground action a in the slice
    Inv(x) & dom(x) & not P(x)                     -> false

SAT means Spacer found an inductive invariant; UNSAT means the conjunct is
violated. Slices equal up to renaming are solved once. The conjunction of the
slice invariants is the candidate certificate; certificate.py prints it in spec
syntax and re-checks it on the *whole* machine with an independent query.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from . import chc
from .coi import Slice, canonical_frame, conjuncts, slice_property, slice_system
from .encode import Encoding
from .limits import Limits


@dataclass
class ProofAttempt:
    verdict: str  # "holds" | "violated" | "unknown"
    invariant: z3.BoolRef | None  # over the base frame, when holds
    slices: int = 0
    solved: int = 0  # distinct slices actually sent to Spacer
    detail: str = ""


def spacer_prove(enc: Encoding, prop: z3.BoolRef, limits: Limits) -> ProofAttempt:
    parts = conjuncts(prop)
    cache: dict[str, chc.ChcAnswer] = {}
    invariants: list[z3.BoolRef] = []
    for part in parts:
        if z3.is_true(part):
            continue
        sl = slice_property(enc, part)
        if sl.key not in cache:
            cache[sl.key] = _solve_slice(enc, sl, limits)
        answer = cache[sl.key]
        if answer.verdict == "unsafe":
            return ProofAttempt("violated", None, len(parts), len(cache))
        if answer.invariant is None:
            return ProofAttempt("unknown", None, len(parts), len(cache), detail="Spacer gave up (work budget spent, or unknown)")
        found = answer.invariant
        canon = canonical_frame(enc, sl.cells)
        actual = [enc.base[c] for c in sl.cells]
        invariants.append(z3.substitute(found, *zip(canon, actual, strict=True)) if actual else found)
    inv = z3.simplify(z3.And(invariants)) if invariants else z3.BoolVal(True)
    return ProofAttempt("holds", inv, len(parts), len(cache))  # type: ignore[arg-type]


def _solve_slice(enc: Encoding, sl: Slice, limits: Limits) -> chc.ChcAnswer:
    # Explicit next-state variables (not update terms in the head) keep Spacer's
    # invariants quantifier-free, which the certificate printer needs.
    ts = slice_system(enc, sl.cells, sl.actions)
    steps = [z3.And(ts.dom, guard, *[a == b for a, b in zip(ts.nxt, nxt, strict=True)]) for _, guard, nxt in ts.moves]
    bad = z3.And(ts.dom, z3.Not(ts.at(sl.prop, ts.cur)))
    return chc.solve(chc.Chc(ts.cur, ts.nxt, ts.init, steps, bad), limits)


def k_induction(enc: Encoding, prop: z3.BoolRef, *, max_k: int, limits: Limits) -> tuple[int | None, str]:
    """Smallest k <= max_k for which ``prop`` is k-inductive (base case checked up to k too)."""
    frames = [enc.frame(f"#{i}") for i in range(max_k + 1)]

    def p(i: int) -> z3.BoolRef:
        return enc.substitute(prop, frames[i])  # type: ignore[return-value]

    def step(i: int) -> z3.BoolRef:
        return enc.step_relation(frames[i], frames[i + 1], z3.Int(f"pick#{i}"))

    base = limits.solver()
    base.add(enc.init(frames[0]))
    ind = limits.solver()
    for k in range(1, max_k + 1):
        base.push()
        base.add(z3.Not(p(k - 1)))
        r = limits.check(base)
        base.pop()
        if r != z3.unsat:
            return None, "violated" if r == z3.sat else "unknown"
        base.add(p(k - 1), step(k - 1))
        ind.add(enc.domain_constraint(frames[k - 1]), p(k - 1), step(k - 1))
        ind.push()
        ind.add(z3.Not(p(k)))
        r = limits.check(ind)
        ind.pop()
        if r == z3.unsat:
            return k, "holds"
    return None, "unknown"

"""Liveness under fairness: lasso counterexamples and liveness-to-safety proofs.

Semantics. A run is an infinite sequence of steps; a step is an enabled action or a
stutter (nothing changes). By default a run may stutter anywhere, forever: only a
fairness declaration obliges an action to happen (the usual semantics of TLA+ and
other checkers), so a party with no ``fair`` on its action may simply stop. With
``stutter="deadlock"`` (``--fair-next``) a run stutters only where no action is
enabled: the whole system is then weakly fair (TLA+'s WF(Next)). ``fair a``
is weak fairness on every ground instance of ``a`` (continuously enabled on a
cycle => taken on it); ``fair strong a`` is strong fairness (enabled somewhere
on the cycle => taken on it). Every property reduces to one shape per instance
of its ``forall`` prefix:

    eventually Q          no fair run from the initial state on which Q never holds
    always eventually Q   = true leads_to Q
    P leads_to Q          no fair run that reaches P & !Q and avoids Q from then on

On a finite instance a violation is a *lasso*: a prefix to a state s_l and a loop
back to it, fair on the loop, with Q false from the trigger on.

Proofs use the liveness-to-safety reduction: the state is extended with a
"pending" flag (the trigger happened, Q must stay false), a saved copy of one
loop state, and per fair ground action a "taken" flag and an "enabled/disabled
somewhere" flag. A fair lasso exists iff a state equal to the saved one is
reachable with every fairness obligation met, which is a safety question for
Spacer (chc.py); its invariant is re-checked independently. Each instance is
first proven on its cone-of-influence slice, with stuttering allowed for the
actions outside the cone: a fair lasso of the machine projects to a fair lasso
of the slice, so "no lasso on the slice" is a proof. A slice lasso may be
spurious, so counterexamples always come from a lasso search on the full machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import z3
from racefree.spec import ir
from racefree.spec.values import show_scalar

from . import chc
from .bmc import lexmin
from .coi import Slice, canonical_frame, slice_property, slice_system
from .encode import Encoding
from .limits import Limits
from .result import Stutter


@dataclass
class LiveInstance:
    """One ground instance of a liveness property (its ``forall`` prefix fixed)."""

    label: str
    binding: dict[str, Any]
    kind: ir.TemporalKind
    trigger: z3.BoolRef  # over the base frame; true for eventually / always eventually
    goal: z3.BoolRef
    fair: list[tuple[int, bool]]  # (ground action index, strong)


def instances(enc: Encoding, lv: ir.Liveness) -> list[LiveInstance]:
    m = enc.machine
    fairness = {f.action: f.strong for f in m.fairness}
    fair = [(i, fairness[ga.action.name]) for i, ga in enumerate(enc.actions) if ga.action.name in fairness]
    out = []
    domains = [ir.domain(b.ty) for b in lv.binders]  # type: ignore[arg-type]
    for values in product(*domains):
        env = {b.name: v for b, v in zip(lv.binders, values, strict=True)}
        trigger = enc.invariant(lv.trigger, enc.base, env) if lv.trigger is not None else z3.BoolVal(True)
        goal = enc.invariant(lv.goal, enc.base, env)
        label = lv.name + ("[" + ", ".join(f"{k}={show_scalar(b.ty, v)}" for (k, v), b in
                                           zip(env.items(), lv.binders, strict=True)) + "]" if env else "")
        out.append(LiveInstance(label, env, lv.kind, trigger, goal, fair))
    return out


# --------------------------------------------------------------------- lassos


@dataclass
class Lasso:
    picks: list[int]  # ground action indices (-1 = a stutter), one per step
    loop_start: int  # the state index the last step returns to


class LassoSearch:
    """Incremental search for the shortest fair lasso violating one instance."""

    def __init__(self, enc: Encoding, inst: LiveInstance, limits: Limits, stutter: Stutter) -> None:
        self.enc = enc
        self.stutter = stutter
        self.inst = inst
        self.limits = limits
        self.solver = limits.solver()
        self.frames = [enc.frame("@0")]
        self.picks: list[z3.ArithRef] = []
        self.solver.add(enc.init(self.frames[0]))
        self.per_state: list[_StateTerms] = []  # substituted once per frame, reused at every length

    def try_length(self, n: int) -> Lasso | None | str:
        """A lasso with exactly ``n`` steps, None, or "budget" (spent). Call with n = 1, 2, ... in order."""
        assert n == len(self.picks) + 1
        nxt = self.enc.frame(f"@{n}")
        pick = z3.Int(f"action@{n}")
        self.solver.add(self.enc.step_relation(self.frames[-1], nxt, pick, stutter=self.stutter))
        self.frames.append(nxt)
        self.picks.append(pick)
        loop = z3.Int("loop_start")
        self.per_state.append(_StateTerms(self.enc, self.inst, self.frames[n - 1], pick, loop, n - 1))
        self.solver.push()
        self.solver.add(_lasso_constraints(self.inst, self.frames, self.picks, self.per_state, loop))
        res = self.limits.check(self.solver)
        found: Lasso | None | str = None
        if res == z3.sat:
            chosen = lexmin(self.solver, [*self.picks, loop])
            found = Lasso(chosen[:-1], chosen[-1])
        elif res == z3.unknown:
            found = "budget"
        self.solver.pop()
        return found


def shortest_lasso(enc: Encoding, insts: list[LiveInstance], max_steps: int, limits: Limits, stutter: Stutter, *,
                   on_depth: Callable[[int], None] | None = None
                   ) -> tuple[tuple[LiveInstance, Lasso] | None, int, bool]:
    """The shortest fair lasso over all instances, searched in lockstep by length.

    Returns ((instance, lasso) or None, length searched, work budget spent).
    """
    searches = [LassoSearch(enc, inst, limits, stutter) for inst in insts]
    for n in range(1, max_steps + 1):
        if on_depth:
            on_depth(n)
        for search in searches:
            found = search.try_length(n)
            if found == "budget":
                return None, n - 1, True
            if isinstance(found, Lasso):
                return (search.inst, found), n, False
    return None, max_steps, False


class _StateTerms:
    """What one lasso state contributes, built once and reused at every longer length: its goal
    and trigger, and per fair action whether the step leaving it takes the action and whether
    the action is enabled in it (``loop`` is the same variable at every length)."""

    def __init__(self, enc: Encoding, inst: LiveInstance, frame: list[z3.ExprRef], pick: z3.ArithRef,
                 loop: z3.ArithRef, j: int) -> None:
        self.goal = enc.substitute(inst.goal, frame)
        self.trigger = enc.substitute(inst.trigger, frame)
        in_loop = loop <= j
        self.in_loop = in_loop
        self.fair_here: list[z3.BoolRef] = []  # weak: on the loop, taken here or disabled here
        self.taken_here: list[z3.BoolRef] = []  # strong: on the loop and taken here
        self.quiet_here: list[z3.BoolRef] = []  # strong: on the loop implies disabled here
        for a, strong in inst.fair:
            enabled = enc.substitute(enc.actions[a].guard, frame)
            if strong:
                self.taken_here.append(z3.And(in_loop, pick == a))
                self.quiet_here.append(z3.Implies(in_loop, z3.Not(enabled)))
                self.fair_here.append(z3.BoolVal(False))
            else:
                self.fair_here.append(z3.And(in_loop, z3.Or(pick == a, z3.Not(enabled))))
                self.taken_here.append(z3.BoolVal(False))
                self.quiet_here.append(z3.BoolVal(True))


def _lasso_constraints(inst: LiveInstance, frames: list[list[z3.ExprRef]], picks: list[z3.ArithRef],
                       terms: list[_StateTerms], loop: z3.ArithRef) -> z3.BoolRef:
    n = len(picks)  # states 0..n; state n closes the loop onto state `loop`
    trig = z3.Int("trigger")
    parts: list[z3.BoolRef] = [loop >= 0, loop < n, trig >= 0, trig < n]
    parts.append(z3.Or([z3.And(loop == j, _same(frames[n], frames[j])) for j in range(n)]))
    if inst.kind == "eventually":
        parts.append(trig == 0)
    else:
        parts.append(z3.Or([z3.And(trig == j, terms[j].trigger) for j in range(n)]))
    # From the trigger on, and everywhere on the loop, the goal never holds.
    parts += [z3.Implies(z3.Or(trig <= j, terms[j].in_loop), z3.Not(terms[j].goal)) for j in range(n)]
    for k, (_, strong) in enumerate(inst.fair):
        if strong:
            parts.append(z3.Or(z3.Or([t.taken_here[k] for t in terms]), z3.And([t.quiet_here[k] for t in terms])))
        else:
            parts.append(z3.Or([t.fair_here[k] for t in terms]))
    return z3.And(parts)


def _same(a: list[z3.ExprRef], b: list[z3.ExprRef]) -> z3.BoolRef:
    return z3.And([x == y for x, y in zip(a, b, strict=True)] or [z3.BoolVal(True)])


# --------------------------------------------------------------------- proofs


@dataclass
class LiveProof:
    proven: list[LiveInstance]
    open: list[LiveInstance]  # not proven: a lasso may exist (search for a real one)
    solved: int = 0  # distinct problems sent to Spacer
    representatives: list[LiveInstance] = field(default_factory=list)  # one open instance per symmetry class

    @property
    def holds(self) -> bool:
        return not self.open


def prove(enc: Encoding, insts: list[LiveInstance], limits: Limits, *, sliced: bool = True,
          stutter: Stutter = "always") -> LiveProof:
    """Liveness-to-safety + Spacer for every instance; sliced (stuttering: sound under either
    semantics) or on the whole machine (stuttering where ``stutter`` allows it)."""
    cache: dict[str, bool] = {}
    seen_open: set[str] = set()
    result = LiveProof([], [])
    for inst in insts:
        sl = _instance_slice(enc, inst) if sliced else None
        problem = None
        if sl is None:
            problem = _l2s(enc, inst, None, stutter)
            key = problem.key()
        else:
            key = f"{inst.kind}:{sl.key}"
        if key not in cache:
            problem = problem or _l2s(enc, inst, sl, stutter)
            answer = chc.solve(problem, limits)
            cache[key] = answer.verdict == "safe" and answer.invariant is not None and \
                chc.check_invariant(problem, answer.invariant, limits) is None
        (result.proven if cache[key] else result.open).append(inst)
        if not cache[key] and key not in seen_open:
            seen_open.add(key)
            result.representatives.append(inst)
    result.solved = len(cache)
    return result


def _instance_slice(enc: Encoding, inst: LiveInstance) -> Slice:
    """The cone of the instance's trigger and goal. Its key (with the kind) is equal for
    instances whose sliced liveness-to-safety problems are equal up to renaming, so only one
    CHC is built per symmetry class (building it for every twin is the costly part)."""
    fairness = {a: "strong" if strong else "weak" for a, strong in inst.fair}
    position = {id(ga): i for i, ga in enumerate(enc.actions)}
    side = z3.Bool("trigger_or_goal")  # not a cell: keeps trigger and goal apart in the key
    return slice_property(enc, z3.If(side, inst.trigger, inst.goal),
                          action_tag=lambda ga: fairness.get(position[id(ga)], "unfair"))


def _l2s(enc: Encoding, inst: LiveInstance, sl: Slice | None, stutter: Stutter) -> chc.Chc:
    """The liveness-to-safety CHC on a slice (stuttering allowed) or, without one, the whole machine."""
    if sl is not None:
        ts = slice_system(enc, sl.cells, sl.actions)
        stutter_guard: z3.BoolRef = z3.BoolVal(True)
    else:
        ts = slice_system(enc, list(range(len(enc.cells))), list(range(len(enc.actions))))
        stutter_guard = (z3.BoolVal(True) if stutter == "always" else
                         z3.Not(ts.at(enc.some_enabled(enc.base), ts.cur)))  # only a deadlock stutters
    moving = {a for a, _, _ in ts.moves}
    fair = [(a, strong) for a, strong in inst.fair if a in moving]
    x, x2 = ts.cur, ts.nxt
    y, y2 = canonical_frame(enc, ts.cells, "^s"), canonical_frame(enc, ts.cells, "^s'")
    pending, saved, moved = z3.Bools("pending saved moved")
    pending2, saved2, moved2 = z3.Bools("pending' saved' moved'")
    taken = [z3.Bool(f"taken{k}") for k in range(len(fair))]
    taken2 = [z3.Bool(f"taken{k}'") for k in range(len(fair))]
    mark = [z3.Bool(f"mark{k}") for k in range(len(fair))]
    mark2 = [z3.Bool(f"mark{k}'") for k in range(len(fair))]
    trig, save = z3.Bools("choose_trigger choose_save")

    def obligation(k: int, frame: list[z3.ExprRef]) -> z3.BoolRef:
        a, strong = fair[k]
        enabled = ts.at(enc.actions[a].guard, frame)
        return enabled if strong else z3.Not(enabled)  # strong: "enabled somewhere"; weak: "disabled somewhere"

    def triggered(frame: list[z3.ExprRef]) -> z3.BoolRef:
        """The run may start waiting for the goal here (eventually: only in the initial state)."""
        if inst.kind == "eventually":
            return z3.BoolVal(False)
        return z3.And(trig, ts.at(inst.trigger, frame), z3.Not(ts.at(inst.goal, frame)))

    first = z3.Not(ts.at(inst.goal, x)) if inst.kind == "eventually" else triggered(x)
    init = z3.And(
        ts.init, *[a == b for a, b in zip(y, x, strict=True)],
        pending == first, saved == z3.And(save, pending), z3.Not(moved),
        *[z3.Not(t) for t in taken], *[mk == obligation(k, x) for k, mk in enumerate(mark)],
    )
    steps = []
    options = [*ts.moves, (-1, stutter_guard, list(x))]
    for a, guard, nxt in options:
        loop_flags = [t2 == z3.Or(t, z3.BoolVal(fair[k][0] == a)) for k, (t, t2) in enumerate(zip(taken, taken2, strict=True))]
        loop_flags += [m2 == z3.Or(mk, obligation(k, x2)) for k, (mk, m2) in enumerate(zip(mark, mark2, strict=True))]
        fresh = [z3.Not(t2) for t2 in taken2] + [m2 == obligation(k, x2) for k, m2 in enumerate(mark2)]
        steps.append(z3.And(
            ts.dom, guard, *[a2 == b for a2, b in zip(x2, nxt, strict=True)],
            pending2 == z3.Or(pending, triggered(x2)), z3.Implies(pending2, z3.Not(ts.at(inst.goal, x2))),
            z3.If(saved,
                  z3.And(*[a2 == b for a2, b in zip(y2, y, strict=True)], saved2, moved2, *loop_flags),
                  z3.And(*[a2 == b for a2, b in zip(y2, x2, strict=True)], saved2 == z3.And(save, pending2),
                         z3.Not(moved2), *fresh)),
        ))
    fair_met = [z3.Or(t, z3.Not(mk) if fair[k][1] else mk) for k, (t, mk) in enumerate(zip(taken, mark, strict=True))]
    bad = z3.And(saved, moved, _same(x, y), *fair_met)
    cur = [*x, *y, pending, saved, moved, *taken, *mark]
    nxt_vars = [*x2, *y2, pending2, saved2, moved2, *taken2, *mark2]
    return chc.Chc(cur, nxt_vars, init, steps, bad, choices=[trig, save])


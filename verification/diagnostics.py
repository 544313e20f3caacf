"""What a verdict does not say: actions that never run, bounds that silently disable, vacuous premises.

A property can hold for the wrong reason. Three are common enough to report for every machine:

- an action that is **never enabled** anywhere: dead code in the protocol, or a guard that can
  never be met, so whatever it was meant to do is never checked;
- an action **blocked by a type bound alone** somewhere: its ``requires`` hold but a key or an
  assigned value would leave its declared type, so the step is silently disabled. A buggy
  ``put`` that skips the capacity check of ``count: 0..C`` never overflows in the model, only in
  the code; ``strict_bounds`` (or ``--strict-bounds``) makes this a violation of ``in_bounds``;
- a property whose **premise is never reached**: a ``leads_to`` whose trigger never holds, or an
  invariant ``P implies Q`` (under its ``forall`` prefix) whose ``P`` never holds. It holds
  vacuously.

Each is a reachability question about one state predicate (``Question``). The engine answers
them from the state graph when it has one (exact; the example is the first such state in
breadth-first order, so its path is a shortest one), and otherwise with the cheap symbolic
engines (a quick Spacer proof, re-checked, or a BMC trace); a question neither settles is
left out rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import Any, Literal

import z3
from racefree.spec import ir, values
from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .encode import Encoding
from .result import Step

Kind = Literal["never_enabled", "out_of_bounds", "vacuous"]


@dataclass
class Finding:
    kind: Kind
    subject: str  # the action or property
    message: str
    example: list[Step] | None = None  # a path to the example state


@dataclass
class Question:
    """Is some reachable state one where ``here`` holds? A finding when it is (``out_of_bounds``)
    or when it is not (``never_enabled``, ``vacuous``)."""

    kind: Kind
    subject: str
    here: Callable[[State], bool]
    formula: Callable[[Encoding], z3.BoolRef]  # the same predicate over the base frame
    premise: tuple[ir.Expr, list[dict[str, Any]]] | None = None  # vacuous: the premise and its bindings

    @property
    def finding_if_reachable(self) -> bool:
        return self.kind == "out_of_bounds"

    def finding(self, m: ir.Machine, interp: Interpreter, example: list[Step] | None) -> Finding:
        if self.kind == "never_enabled":
            return Finding(self.kind, self.subject, f"action {self.subject} is never enabled in any reachable state")
        if self.kind == "vacuous":
            return Finding(self.kind, self.subject, f"{self.subject} holds vacuously: its premise is never reached")
        assert example is not None
        args = next(a for n, a in interp.out_of_bounds(example[-1].state) if n == self.subject)
        call = f"{self.subject}({values.show_args(m.action(self.subject), args)})" if args else self.subject
        return Finding(self.kind, self.subject,
                       f"{call} is disabled by a type bound alone: its requires hold but a key or a value "
                       f"would leave its declared type (strict_bounds makes this a violation)", example)


def questions(interp: Interpreter) -> list[Question]:
    m = interp.machine
    out = [Question("never_enabled", a.name, partial(_enabled, interp.actions[a.name].successors),
                    partial(_any_guard, a.name)) for a in m.actions]
    out += [Question("out_of_bounds", a.name, partial(_blocked, interp.actions[a.name].out_of_bounds),
                     partial(_any_block, a.name)) for a in m.actions if interp.actions[a.name].out_of_bounds]
    for name, premise, binders in _premises(m):
        pred = interp.param_pred(premise, [b.name for b in binders])
        envs = _bindings(binders)
        out.append(Question("vacuous", name, partial(_some_instance, pred, [tuple(e.values()) for e in envs]),
                            partial(_any_premise, premise, envs), (premise, envs)))
    return out


def _enabled(successors: Callable[[State], list[Any]], state: State) -> bool:
    return bool(successors(state))


def _blocked(out_of_bounds: Callable[[State], list[Any]], state: State) -> bool:
    return bool(out_of_bounds(state))


def _some_instance(pred: Callable[..., bool], instances: list[tuple[Any, ...]], state: State) -> bool:
    return any(pred(state, *args) for args in instances)


def _any_guard(action: str, enc: Encoding) -> z3.BoolRef:
    return z3.Or([ga.guard for ga in enc.actions if ga.action.name == action] or [z3.BoolVal(False)])


def _any_block(action: str, enc: Encoding) -> z3.BoolRef:
    return z3.Or([b for a, _, b in enc.bound_blocks if a.name == action] or [z3.BoolVal(False)])


def _any_premise(premise: ir.Expr, envs: list[dict[str, Any]], enc: Encoding) -> z3.BoolRef:
    return z3.Or([enc.invariant(premise, enc.base, env) for env in envs])


def _premises(m: ir.Machine) -> list[tuple[str, ir.Expr, list[ir.Binder]]]:
    """Implication-shaped properties: (name, premise, the binders it is under)."""
    out = [(lv.name, lv.trigger, list(lv.binders)) for lv in m.liveness if lv.trigger is not None]
    for inv in m.invariants:
        binders: list[ir.Binder] = []
        e = inv.expr
        while isinstance(e, ir.Quant) and e.kind == "forall":
            binders += e.binders
            e = e.body
        if isinstance(e, ir.Binary) and e.op == "implies":
            out.append((inv.name, e.left, binders))
    return out


def _bindings(binders: list[ir.Binder]) -> list[dict[str, Any]]:
    return [{b.name: v for b, v in zip(binders, vals, strict=True)}
            for vals in product(*[ir.domain(b.ty) for b in binders])]  # type: ignore[arg-type]

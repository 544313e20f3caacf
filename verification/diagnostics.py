"""What a verdict does not say: actions that never run, bounds that silently disable, vacuous premises.

A property can hold for the wrong reason. Three are common enough to report for every machine
whose state graph is built (every reachable state is then known):

- an action that is **never enabled** anywhere: dead code in the protocol, or a guard that can
  never be met, so whatever it was meant to do is never checked;
- an action **blocked by a type bound alone** somewhere: its ``requires`` hold but a key or an
  assigned value would leave its declared type, so the step is silently disabled. A buggy
  ``put`` that skips the capacity check of ``count: 0..C`` never overflows in the model, only in
  the code; ``strict_bounds`` (or ``--strict-bounds``) makes this a violation of ``in_bounds``;
- a property whose **premise is never reached**: a ``leads_to`` whose trigger never holds, or an
  invariant ``P implies Q`` (under its ``forall`` prefix) whose ``P`` never holds. It holds
  vacuously.

Each finding names one example: the first reachable state, in breadth-first order, so the
path to it is a shortest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import Any, Literal

from racefree.spec import ir, values
from racefree.spec.interp import Interpreter

from .explicit import StateGraph
from .result import Step

Kind = Literal["never_enabled", "out_of_bounds", "vacuous"]


@dataclass
class Finding:
    kind: Kind
    subject: str  # the action or property
    message: str
    example: list[Step] | None = None  # a shortest path to the example state


def diagnose(interp: Interpreter, graph: StateGraph) -> list[Finding]:
    m = interp.machine
    taken = {name for out in graph.edges for name, _, _ in out}
    found = [Finding("never_enabled", a.name, f"action {a.name} is never enabled in any reachable state")
             for a in m.actions if a.name not in taken]
    first: dict[str, tuple[int, tuple[Any, ...]]] = {}  # action -> first state index and arguments blocked
    if any(ca.out_of_bounds for ca in interp.actions.values()):
        for i, st in enumerate(graph.states):
            for name, args in interp.out_of_bounds(st):
                first.setdefault(name, (i, args))
    for name, (hit, args) in sorted(first.items(), key=lambda kv: [a.name for a in m.actions].index(kv[0])):
        call = f"{name}({values.show_args(m.action(name), args)})" if args else name
        found.append(Finding("out_of_bounds", name,
                             f"{call} is disabled by a type bound alone: its requires hold but a key or a value "
                             f"would leave its declared type (strict_bounds makes this a violation)",
                             graph.path(hit)))
    for prop, premises in _premises(interp):
        if all(_first(graph, p) is None for p in premises):
            found.append(Finding("vacuous", prop, f"{prop} holds vacuously: its premise is never reached"))
    return found


def _first(graph: StateGraph, pred: Callable[[Any], bool]) -> int | None:
    return next((i for i, st in enumerate(graph.states) if pred(st)), None)


def _premises(interp: Interpreter) -> list[tuple[str, list[Callable[[Any], bool]]]]:
    """Per implication-shaped property, its premise as one state predicate per instance of its prefix."""
    m = interp.machine
    out = []
    for lv in m.liveness:
        if lv.trigger is not None:
            preds = [interp.live_preds(lv, b)[0] for b in _bindings(lv.binders)]
            out.append((lv.name, preds))
    for inv in m.invariants:
        binders: list[ir.Binder] = []
        e = inv.expr
        while isinstance(e, ir.Quant) and e.kind == "forall":
            binders += e.binders
            e = e.body
        if isinstance(e, ir.Binary) and e.op == "implies":
            pred = interp.param_pred(e.left, [b.name for b in binders])
            out.append((inv.name, [partial(_at, pred, tuple(b.values())) for b in _bindings(binders)]))
    return out


def _at(pred: Callable[..., bool], args: tuple[Any, ...], state: Any) -> bool:
    return pred(state, *args)


def _bindings(binders: tuple[ir.Binder, ...] | list[ir.Binder]) -> list[dict[str, Any]]:
    return [{b.name: v for b, v in zip(binders, vals, strict=True)}
            for vals in product(*[ir.domain(b.ty) for b in binders])]  # type: ignore[arg-type]

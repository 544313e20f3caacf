"""Breadth-first enumeration of the finite instance through the reference interpreter.

Independent of Z3: it is the oracle the symbolic engines are compared with.
BFS order makes the first violation found a shortest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .result import Step


@dataclass
class Exploration:
    states: int
    complete: bool  # False when max_states stopped it
    violations: dict[str, list[Step]]  # property -> shortest trace
    depth: int


def explore(interp: Interpreter, props: list[str], *, max_states: int = 5_000_000,
            on_progress: Callable[[int, int], None] | None = None) -> Exploration:
    parent: dict[State, tuple[State, str, tuple] | None] = {interp.init: None}
    checks = [(p, interp.invariants[p]) for p in props]
    violations: dict[str, list[Step]] = {}

    def check(state: State) -> None:
        for name, holds in checks:
            if name not in violations and not holds(state):
                violations[name] = _path(parent, state)

    check(interp.init)
    frontier = [interp.init]
    depth = 0
    successors = [ca.successors for ca in interp.actions.values()]
    names = list(interp.actions)
    while frontier and len(violations) < len(checks):
        nxt: list[State] = []
        for st in frontier:
            for name, succ in zip(names, successors, strict=True):
                for args, new in succ(st):
                    if new not in parent:
                        parent[new] = (st, name, args)
                        nxt.append(new)
                        check(new)
            if len(parent) > max_states:
                return Exploration(len(parent), False, violations, depth)
        frontier = nxt
        depth += 1
        if on_progress:
            on_progress(depth, len(parent))
    complete = not frontier
    return Exploration(len(parent), complete, violations, depth)


def _path(parent: dict[State, tuple[State, str, tuple] | None], state: State) -> list[Step]:
    steps = []
    cur: State | None = state
    while cur is not None:
        link = parent[cur]
        if link is None:
            steps.append(Step(None, (), cur))
            break
        prev, name, args = link
        steps.append(Step(name, args, cur))
        cur = prev
    return steps[::-1]

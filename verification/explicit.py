"""Breadth-first enumeration of the finite instance through the reference interpreter.

Independent of Z3: it is the oracle the symbolic engines are compared with.
BFS order makes the first violation found a shortest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .fair import Csr
from .result import STUTTER, Step, Stutter

if TYPE_CHECKING:  # diagnostics imports Z3; the explicit engines do not need it
    from .diagnostics import Question


@dataclass
class Exploration:
    states: int
    complete: bool  # False when max_states stopped it
    violations: dict[str, list[Step]]  # property -> shortest trace
    depth: int


def explore(interp: Interpreter, props: dict[str, Callable[[State], bool]], *, max_states: int = 5_000_000,
            on_progress: Callable[[int, int], None] | None = None) -> Exploration:
    parent: dict[State, tuple[State, str, tuple] | None] = {interp.init: None}
    checks = list(props.items())
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


# ------------------------------------------------------------------ liveness

Edge = tuple[str, tuple, int]  # (action, args, successor index); STUTTER for a self-loop where a run may stay put


@dataclass
class StateGraph:
    """Every reachable state, in breadth-first order, with its outgoing edges and BFS parent."""

    states: list[State]
    edges: list[list[Edge]]
    parent: list[tuple[int, str, tuple] | None]

    def path(self, i: int) -> list[Step]:
        """The shortest path from the initial state to state ``i`` (BFS tree)."""
        steps = []
        link = self.parent[i]
        while link is not None:
            prev, name, args = link
            steps.append(Step(name, args, self.states[i]))
            i, link = prev, self.parent[prev]
        steps.append(Step(None, (), self.states[0]))
        return steps[::-1]

    @property
    def size(self) -> int:
        return len(self.states)

    def taken_actions(self) -> set[str]:
        """The actions some edge takes (enabled in some reachable state)."""
        return {a for out in self.edges for a, _, _ in out if a != STUTTER}

    def state(self, i: int) -> State:
        return self.states[i]

    def first_state(self, q: Question) -> int | None:
        """The first state (in BFS order) where a diagnostic question's predicate holds."""
        return next((i for i, st in enumerate(self.states) if q.here(st)), None)

    @cached_property
    def csr(self) -> Csr:
        return Csr.from_lists(self.edges)

    def live_masks(self, interp: Interpreter, lv: ir.Liveness, binding: dict) -> tuple[np.ndarray, np.ndarray]:
        """Per state: (the trigger of this instance of ``lv`` holds, its goal does not)."""
        trigger, goal = interp.live_preds(lv, binding)
        return (np.array([trigger(s) for s in self.states], dtype=bool),
                np.array([not goal(s) for s in self.states], dtype=bool))

    def first_violation(self, holds: Callable[[State], bool], name: str | None = None) -> list[Step] | None:
        """A shortest trace to a state where ``holds`` is false (states are in BFS order)."""
        for i, st in enumerate(self.states):
            if not holds(st):
                return self.path(i)
        return None


def state_graph(interp: Interpreter, max_states: int, stutter: Stutter = "always",
                on_progress: Callable[[int], None] | None = None) -> StateGraph | None:
    """Every reachable state and its outgoing edges; None when there are more than ``max_states``.

    ``stutter``: where a run may stay put forever (a STUTTER self-loop): in every state (the
    usual semantics: only fairness obliges an action to happen), or only where nothing is
    enabled (``deadlock``: the whole system is weakly fair, TLA+'s WF(Next))."""
    index = {interp.init: 0}
    states = [interp.init]
    parent: list[tuple[int, str, tuple] | None] = [None]
    edges: list[list[Edge]] = []
    i = 0
    while i < len(states):
        out: list[Edge] = []
        for name, args, nxt in interp.successors(states[i]):
            j = index.get(nxt)
            if j is None:
                j = index[nxt] = len(states)
                states.append(nxt)
                parent.append((i, name, args))
                if len(states) > max_states:
                    return None
            out.append((name, args, j))
        if stutter == "always" or not out:
            out.append((STUTTER, (), i))
        edges.append(out)
        i += 1
        if on_progress is not None and i % 4096 == 0:
            on_progress(len(states))
    return StateGraph(states, edges, parent)

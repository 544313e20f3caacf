"""Depth-first search through the interpreter: deep but simple bugs in instances too large to enumerate.

Breadth-first search and BMC find the *shortest* counterexample, which costs every state (or
every unrolling) up to its depth: a deadlock 32 steps deep in an instance with millions of
states is out of reach of both at their default bounds. Following one path as deep as it goes
(actions in declaration order, arguments in domain order, so the search is deterministic) is
how explicit-state checkers such as SPIN find such bugs in a fraction of a second. The trace
is not necessarily the shortest; it is replayed through the interpreter like every other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .result import Step


@dataclass
class DepthFirst:
    trace: list[Step] | None  # a violating path, when one was found
    states: int  # distinct states visited
    complete: bool  # every reachable state visited (no violation then means: holds in this instance)


def depth_first(interp: Interpreter, holds: Callable[[State], bool], max_states: int,
                on_progress: Callable[[int], None] | None = None) -> DepthFirst:
    """Search for a state where ``holds`` is false, visiting at most ``max_states`` states."""
    if not holds(interp.init):
        return DepthFirst([Step(None, (), interp.init)], 1, False)
    seen = {interp.init}
    # The current path: (state, the step that reached it, the successors still to try).
    path: list[tuple[State, tuple[str, tuple[Any, ...]] | None, Iterator[tuple[str, tuple[Any, ...], State]]]] = [
        (interp.init, None, interp.successors(interp.init))]
    while path:
        nxt = next(path[-1][2], None)
        if nxt is None:
            path.pop()
            continue
        name, args, state = nxt
        if state in seen:
            continue
        seen.add(state)
        if on_progress is not None and len(seen) % 4096 == 0:
            on_progress(len(seen))
        path.append((state, (name, args), interp.successors(state)))
        if not holds(state):
            trace = [Step(None, (), interp.init)] + [Step(how[0], how[1], st) for st, how, _ in path[1:] if how]
            return DepthFirst(trace, len(seen), False)
        if len(seen) >= max_states:
            return DepthFirst(None, len(seen), False)
    return DepthFirst(None, len(seen), True)

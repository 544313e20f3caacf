"""Replay a counterexample through the reference interpreter before anyone sees it.

A trace from Z3 is only reported when every step is enabled in the interpreter,
produces exactly the state Z3 claimed, and the property fails at the last state
(and nowhere before). A mismatch is an encoder bug and raises loudly.
"""

from __future__ import annotations

from collections.abc import Callable

from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .result import STUTTER, Step, Stutter


class ReplayMismatch(AssertionError):
    """The Z3 encoding and the reference semantics disagree: a bug in racefree, not in the spec."""


def replay(interp: Interpreter, prop: str, holds: Callable[[State], bool], trace: list[Step]) -> None:
    """Check a safety counterexample for ``prop`` (whose predicate is ``holds``) step by step."""
    state = replay_steps(interp, trace)
    for i, st in enumerate(trace[:-1]):
        if not holds(st.state):
            raise ReplayMismatch(f"'{prop}' already fails at step {i}: the trace is not minimal")
    if holds(state):
        raise ReplayMismatch(f"'{prop}' holds at the end of the trace")


def replay_steps(interp: Interpreter, trace: list[Step], stutter: Stutter = "deadlock") -> State:
    """Every step enabled in the interpreter and reaching exactly the claimed state; returns the last state.
    A stutter is a step only where ``stutter`` allows one."""
    if not trace or trace[0].action is not None or trace[0].state != interp.init:
        raise ReplayMismatch("trace does not start in the initial state")
    state = interp.init
    for i, st in enumerate(trace[1:], start=1):
        assert st.action is not None
        nxt: State | None
        if st.action == STUTTER:
            if stutter == "never" or (stutter == "deadlock" and interp.enabled_any(state)):
                raise ReplayMismatch(f"step {i}: a stutter, but the state is not a deadlock")
            nxt = state
        else:
            nxt = interp.step(state, st.action, st.args)
        if nxt is None:
            raise ReplayMismatch(f"step {i}: {st.action}{st.args} is not enabled in the interpreter")
        if nxt != st.state:
            raise ReplayMismatch(f"step {i}: {st.action}{st.args} reaches {nxt}, Z3 claimed {st.state}")
        state = nxt
    return state

"""Replay a counterexample through the reference interpreter before anyone sees it.

A trace from Z3 is only reported when every step is enabled in the interpreter,
produces exactly the state Z3 claimed, and the property fails at the last state
(and nowhere before). A mismatch is an encoder bug and raises loudly.
"""

from __future__ import annotations

from racefree.spec.interp import Interpreter

from .result import Step


class ReplayMismatch(AssertionError):
    """The Z3 encoding and the reference semantics disagree: a bug in racefree, not in the spec."""


def replay(interp: Interpreter, prop: str, trace: list[Step]) -> None:
    if not trace or trace[0].action is not None or trace[0].state != interp.init:
        raise ReplayMismatch("trace does not start in the initial state")
    state = interp.init
    for i, st in enumerate(trace[1:], start=1):
        if not interp.holds(prop, state):
            raise ReplayMismatch(f"'{prop}' already fails at step {i - 1}: the trace is not minimal")
        assert st.action is not None
        nxt = interp.step(state, st.action, st.args)
        if nxt is None:
            raise ReplayMismatch(f"step {i}: {st.action}{st.args} is not enabled in the interpreter")
        if nxt != st.state:
            raise ReplayMismatch(f"step {i}: {st.action}{st.args} reaches {nxt}, Z3 claimed {st.state}")
        state = nxt
    if interp.holds(prop, state):
        raise ReplayMismatch(f"'{prop}' holds at the end of the trace")

"""What every engine returns: one verdict per property, with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from racefree.spec import ir, values
from racefree.spec.values import State

STUTTER = "(stutter)"  # the action name of a step in which a run stays put
# Where a run may stutter: never, only where no action is enabled (the run has ended), or anywhere.
Stutter = Literal["never", "deadlock", "always"]
VerdictT = Literal["holds", "violated", "unknown"]
MethodT = Literal["proof", "bmc", "explicit", "lasso", "k-induction", "dfs"]


@dataclass(frozen=True)
class Step:
    """One step of a trace: the action taken (None for the initial state) and the state after it."""

    action: str | None
    args: tuple[Any, ...]
    state: State


@dataclass
class Result:
    machine: ir.Machine
    prop: str
    verdict: VerdictT
    method: MethodT
    bound: int | None  # None = unbounded
    seconds: float = 0.0
    trace: list[Step] | None = None
    loop_start: int | None = None  # lasso counterexamples: the step index the loop returns to
    kind: Literal["invariant", "liveness"] = "invariant"
    replayed: bool = False
    certificate: str | None = None
    states: int | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> ir.Verdict | None:
        return self.machine.expected(self.prop)

    @property
    def matches(self) -> bool:
        return self.verdict == (self.expected or "holds")

    def trace_json(self) -> list[dict[str, Any]] | None:
        return None if self.trace is None else trace_json(self.machine, self.trace, self.loop_start)


def trace_json(m: ir.Machine, trace: list[Step], loop_start: int | None = None) -> list[dict[str, Any]]:
    """A trace as JSON: per step its role, action, arguments and the whole state after it."""
    out = []
    for i, st in enumerate(trace):
        role = None
        args: dict[str, Any] = {}
        if st.action and st.action != STUTTER:
            a = m.action(st.action)
            role = a.role
            args = {p.name: values.to_json(p.ty, x) for p, x in zip(a.params, st.args, strict=True)}  # type: ignore[arg-type]
        row = {"step": i, "role": role, "action": st.action, "args": args, "state": values.state_json(m, st.state)}
        if loop_start is not None:
            row["loop_start"] = i == loop_start
        out.append(row)
    return out

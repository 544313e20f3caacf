"""What every generated Hypothesis state machine shares: drive a generated machine, compare with the interpreter.

The emitted classes (``racefree gen`` writes ``model_<spec>.py``) declare one rule
per action and one invariant per spec invariant; this base class does the
comparing. Imported only by those test modules (it needs Hypothesis).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_file

from .base import GuardRejected, GuardTimeout, MachineBase


@cache
def interpreter(spec_file: Path, machine: str) -> Interpreter:
    f = load_file(spec_file)
    return Interpreter(next(m for m in f.machines if m.name == machine))


class ModelHarness(RuleBasedStateMachine):
    MACHINE: ClassVar[type[MachineBase]]
    SPEC_FILE: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.interp = interpreter(self.SPEC_FILE.resolve(), self.MACHINE.MACHINE)
        self.machine = self.MACHINE()
        self.state = self.interp.init
        assert self.machine.encoded() == self.state, "initial states differ"

    # ------------------------------------------------------- used by emitted rules
    def can(self, action: str) -> bool:
        return bool(self.interp.actions[action].successors(self.state))

    def take(self, action: str, data: st.DataObject) -> None:
        """Take one enabled instance (drawn from the interpreter's) on both sides; states must agree."""
        options = self.interp.actions[action].successors(self.state)
        args, expected = data.draw(st.sampled_from(options), label=action)
        assert self.machine.fire(action, *args), f"{action}{args} refused by the generated machine"
        got = self.machine.encoded()
        assert got == expected, f"after {action}{args}: generated {got} != interpreter {expected}"
        self.state = expected

    def check_invariant(self, name: str) -> None:
        spec_holds = self.interp.invariants[name](self.state)
        gen_holds = name not in self.machine.violated_invariants()
        assert spec_holds == gen_holds, f"{name}: interpreter says {spec_holds}, generated machine {gen_holds}"
        if self.interp.machine.expected(name) == "holds":
            assert spec_holds, f"{name} is expected to hold but is violated in {self.state}"

    # ------------------------------------------------------- shared rule
    @precondition(lambda self: bool(self.interp.machine.actions))
    @rule(data=st.data())
    def call_any_instance(self, data: st.DataObject) -> None:
        """Call any instance: enabled ones must be taken, disabled ones refused by the action's policy."""
        info = data.draw(st.sampled_from(self.MACHINE.ACTIONS), label="action")
        args: tuple[Any, ...] = data.draw(st.sampled_from(list(info.instances())), label="args")
        expected = self.interp.step(self.state, info.name, args)
        if expected is not None:
            assert self.machine.fire(info.name, *args)
            self.state = expected
        elif info.policy == "ignore":
            assert getattr(self.machine, info.name)(*args) is False
        else:
            refusal = GuardTimeout if info.policy == "wait" else GuardRejected
            try:
                if info.policy == "wait":
                    getattr(self.machine, info.name)(*args, timeout=0)
                else:
                    getattr(self.machine, info.name)(*args)
            except refusal:
                pass
            else:
                raise AssertionError(f"{info.name}{args} is not enabled in the spec but was taken")
        assert self.machine.encoded() == self.state

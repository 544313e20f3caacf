"""Every counterexample `racefree check` finds in the bundled specs replays on the generated machine,
with its monitor on, and fails at the same step (DESIGN §5: the code enforces what was proven)."""

from __future__ import annotations

import importlib
from functools import cache

import pytest
from racefree.codegen.machine import snake
from racefree.runtime.base import InvariantViolated, MachineBase
from racefree.spec import ir
from racefree.spec.loader import load_file
from racefree.verification.engine import MachineChecker, Options
from racefree.verification.result import STUTTER

from .conftest import EXAMPLES
from .test_protocols import checker, machines


@cache
def example_machines() -> dict[str, ir.Machine]:
    return {m.name: m for f in sorted(EXAMPLES.glob("*.rf")) for m in load_file(f).machines}


@cache
def example_checker(name: str) -> MachineChecker:
    return MachineChecker(example_machines()[name], Options())


def _cells() -> list[tuple[str, str]]:
    every = {**machines(), **example_machines()}
    return sorted((m.name, p) for m in every.values() for p in m.property_names if m.expected(p) == "violated")


def generated(name: str) -> type[MachineBase]:
    return getattr(importlib.import_module(f"racefree.runtime.generated.{snake(name)}"), name)


@pytest.mark.parametrize("cell", _cells(), ids=lambda c: f"{c[0]}.{c[1]}")
def test_counterexample_replays_on_the_generated_machine(cell: tuple[str, str]) -> None:
    name, prop = cell
    res = (example_checker(name) if name in example_machines() else checker(name)).check(prop)
    assert res.verdict == "violated" and res.trace is not None
    m = generated(name)(monitor=True)
    assert m.encoded() == res.trace[0].state
    last = len(res.trace) - 1
    for i, step in enumerate(res.trace[1:], 1):
        if step.action == STUTTER:  # a lasso that ends deadlocked: nothing is enabled here either
            assert m.enabled_instances() == []
            continue
        try:
            assert m.fire(step.action, *step.args), (i, step.action)
        except InvariantViolated as exc:  # the monitor stops the caller; the step is taken
            assert i == last or prop not in (exc.property, *m.violated_invariants()), f"{prop} broke early at {i}"
            if i == last and prop in m.INVARIANTS:
                assert prop in m.violated_invariants()
                break
        else:
            assert prop not in m.violated_invariants() or i == last
            if i == last and prop in m.INVARIANTS:
                pytest.fail(f"the monitor did not stop step {i}: {step.action}{step.args}")
        assert m.encoded() == step.state, f"step {i} {step.action}{step.args} diverges from the interpreter"
    if prop == ir.DEADLOCK_FREE:
        assert m.enabled_instances() == []
    elif res.loop_start is not None:  # a lasso: the loop closes on the generated machine too
        assert m.encoded() == res.trace[res.loop_start].state


def test_replay_keep_going_lists_every_broken_property_and_stops_at_a_refusal() -> None:
    from racefree.verification import traces

    m = machines()["CkptPreFix"]
    res = checker("CkptPreFix").check("no_delete_before_load")
    assert res.trace is not None
    events = [(float(i), 0, i, i, s.action, tuple(s.args), 1) for i, s in enumerate(res.trace[1:], 1)]
    plain = traces.replay(m, iter(events))
    full = traces.replay(m, iter(events), keep_going=True)
    assert plain.outcome == full.outcome == "invariant" and plain.prop == full.prop == "async_bound"  # T2 first
    assert plain.events < len(events) and [p for p, _ in plain.violations] == ["async_bound"]
    assert ("no_delete_before_load", len(events)) in full.violations and full.events == plain.events
    refused = events + [(1e9, 0, 999, 999, "publish_close", (), 1)]  # tpc is not PUB: not enabled
    after = traces.replay(m, iter(refused), keep_going=True)
    assert after.outcome == "not_enabled" and after.failing == refused[-1]
    assert "no_delete_before_load" in dict(after.violations)

"""The fast explicit engine (verification/bfs.py, vector.py) against the reference interpreter.

Random expressions on random batches of states (Hypothesis), and whole state graphs:

On every bundled and regression spec: the same reachable states in the same (breadth-first)
order, the same edges and parents, so the same shortest traces; and the same first violation
of every safety property. The large slot_ring variants take the interpreter seconds each, so
they are in the slow set; their counts are pinned in test_protocols.py either way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from racefree.spec import ir
from racefree.spec.checker import check_expression
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_instance, load_text
from racefree.verification.bfs import PackedGraph, PackedMachine, search
from racefree.verification.engine import MachineChecker, Options
from racefree.verification.explicit import state_graph
from racefree.verification.result import STUTTER
from racefree.verification.vector import Unsupported

from .conftest import EXAMPLES, ROOT, SPECS
from .strategies import SCOPE, bool_exprs

FILES = sorted([*(ROOT / "spec" / "protocols").glob("*.rf"), *EXAMPLES.glob("*.rf"), *(SPECS / "ok").glob("*.rf"),
                *(SPECS / "counterexample").glob("*.rf")])
SLOW = {"SlotRingPreFix", "SlotRingPostFix", "SlotRingFenced", "SlotRingFencedLeaseReaper"}


@cache
def all_machines() -> dict[str, ir.Machine]:
    from racefree.spec.loader import load_file

    return {m.name: m for f in FILES for m in load_file(f).machines}


def _cases() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in sorted(all_machines())]


@pytest.mark.parametrize("name", _cases())
def test_same_graph_and_verdicts_as_the_interpreter(name: str) -> None:
    m = all_machines()[name]
    interp = Interpreter(m)
    pm = PackedMachine(m, interp)
    limit = 400_000 if name in SLOW else 50_000
    fast = search(pm, limit, edges=True)
    ref = state_graph(interp, limit)
    if ref is None:  # both stop at the limit (SlotsForgetfulConsume: 2 million states)
        assert not fast.complete
        return
    assert fast.complete
    graph = PackedGraph(fast, "always")
    assert graph.size == ref.size
    assert graph.states == ref.states
    assert graph.parent == ref.parent
    assert graph.edges == ref.edges
    props = {i.name: interp.invariants[i.name] for i in m.invariants}
    # The interpreter's deadlock_free, read off its own graph: a state with a successor (the
    # interpreter's successors built the edges) or a declared terminal. Asking every action's
    # guard again, state by state, cost the slow cases more than the rest of this test.
    moving = {ref.states[i] for i, out in enumerate(ref.edges) if any(name != STUTTER for name, _, _ in out)}
    props |= {ir.DEADLOCK_FREE: lambda st: st in moving or any(t(st) for t in interp.terminals),
              ir.IN_BOUNDS: interp.in_bounds}
    for prop, holds in props.items():
        if prop.startswith("lemma_") and name in SLOW:
            # The fenced rings' 22 lemmas hold everywhere (proven by Houdini): compare their
            # compiled predicates with the interpreter's on every 8th state, not all 100k+.
            sample = range(0, ref.size, 8)
            fast_values = pm.holds(fast.states[::8])[prop].tolist()
            assert fast_values == [holds(ref.states[i]) for i in sample], prop
            continue
        assert graph.first_violation(holds, prop) == ref.first_violation(holds), prop


def test_early_stop_finds_the_same_shortest_trace() -> None:
    """Searching only for some properties stops once each has failed, with the graph's traces."""
    m = all_machines()["CkptPostFixResume"]
    interp = Interpreter(m)
    pm = PackedMachine(m, interp)
    full = search(pm, 1_000_000)
    early = search(pm, 1_000_000, props=["no_torn_read", "async_bound"])
    assert not early.complete and early.size < full.size
    for prop in ("no_torn_read", "async_bound"):
        assert early.path(early.first_bad[prop]) == full.path(full.first_bad[prop])


def test_max_states_stops_the_search() -> None:
    m = all_machines()["CkptPostFixEval"]
    found = search(PackedMachine(m, Interpreter(m)), 1_000)
    assert not found.complete and 1_000 < found.size < 21_252


def test_fingerprints_exact_or_hashed() -> None:
    """A state that fits in 64 bits is its own fingerprint; a wider one is hashed, and the
    collision bound is reported."""
    small = all_machines()["Peterson"]
    pm = PackedMachine(small, Interpreter(small))
    assert pm.exact and search(pm, 1000).collision_probability == 0.0
    wide = all_machines()["CkptPostFix"]
    pm = PackedMachine(wide, Interpreter(wide))
    found = search(pm, 100_000)
    assert not pm.exact and 0.0 < found.collision_probability < 1e-10
    fps = pm.fingerprints(found.states)
    assert len(np.unique(fps)) == found.size


def test_a_deployment_sized_instance() -> None:
    """Constants replaced (--const): the slot benchmark at W=3, S=4 has 7^4 states."""
    m = load_instance(EXAMPLES / "slots.rf", "Slots", {"W": 3, "S": 4})
    assert search(PackedMachine(m, Interpreter(m)), 10_000).size == 7 ** 4


UNSUPPORTED = """
machine Halves
  var a: 1..4 = 4
  var b: 1..2 = 2
  var q: 0..4 = 0
  action divide
    q := a / b
  action halve_less
    b := 1
  invariant small: q <= 2
  expect small violated
"""


def test_an_untranslated_construct_falls_back_to_the_interpreter(tmp_path: Path) -> None:
    m = load_text(UNSUPPORTED).machines[0]
    with pytest.raises(Unsupported):
        PackedMachine(m, Interpreter(m))
    checker = MachineChecker(m, Options(engine="explicit"))
    assert checker.packed is None
    res = checker.check("small")
    assert res.verdict == "violated" and res.replayed and len(res.trace) == 3


# ------------------------------------------------------------------ random expressions

SCOPE_MACHINE = load_text(SCOPE).machines[0]
SCOPE_PACKED = PackedMachine(SCOPE_MACHINE, Interpreter(SCOPE_MACHINE))
scope_states = st.tuples(
    st.integers(0, 3), st.integers(0, 3), st.booleans(), st.frozensets(st.integers(0, 3)),
    st.tuples(*[st.integers(0, 1)] * 4), st.one_of(st.none(), st.integers(0, 3)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(bool_exprs(), st.lists(scope_states, min_size=1, max_size=16))
def test_compiled_predicates_agree_with_the_interpreter(e: ir.Expr, states: list[tuple]) -> None:
    """The numpy translation of a random expression, on a batch of random states, is the
    interpreter's truth value in each (undefined counts as false in both)."""
    typed = check_expression(SCOPE_MACHINE, e)
    try:
        term = SCOPE_PACKED.compiler.predicate(typed)
    except Unsupported:  # e.g. a set literal wider than 62 elements: the interpreter would be used
        assume(False)
    rows = np.stack([SCOPE_PACKED.layout.encode(s) for s in states])
    [got] = SCOPE_PACKED.where([term], rows)
    holds = Interpreter(SCOPE_MACHINE).eval_pred(typed)
    assert got.tolist() == [holds(s) for s in states]

"""Engines are checked against each other and against independent checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_file, load_text
from racefree.verification.certificate import CertificateRejected, recheck
from racefree.verification.encode import Encoding
from racefree.verification.engine import MachineChecker, Options, replay_lasso
from racefree.verification.limits import Limits
from racefree.verification.replay import ReplayMismatch, replay
from racefree.verification.result import STUTTER, Step

from .conftest import EXAMPLES, SPECS

# Small instances only: the explicit engine is the oracle, and it enumerates every state.
SMALL = [EXAMPLES / "peterson.rf"] + sorted((SPECS / "ok").glob("*.rf")) + sorted(
    (SPECS / "counterexample").glob("*.rf"))
SMALL_SLOTS = (EXAMPLES / "slots.rf").read_text() + "".join(
    f"\nmachine {base}Small extends {base}\n  override const W = 2\n  override const S = 2\n"
    for base in ["Slots", "SlotsForgetfulConsume", "SlotsLive", "SlotsLiveUnfairReader"])


def _agree(machines) -> None:
    for m, stutter in [(m, s) for m in machines for s in ("always", "deadlock")]:
        # graph_states=0: no state graph, so every verdict comes from Z3 (Spacer, BMC, lassos)
        symbolic = {r.prop: r for r in MachineChecker(m, Options(graph_states=0, stutter=stutter)).check_all()}
        explicit = {r.prop: r for r in MachineChecker(m, Options(engine="explicit", stutter=stutter)).check_all()}
        assert symbolic.keys() == explicit.keys()
        for prop, s in symbolic.items():
            e = explicit[prop]
            assert s.verdict == e.verdict, (m.name, prop, stutter)
            if s.verdict == "violated":
                assert s.replayed and e.replayed
                if s.kind == "invariant":
                    assert s.bound == e.bound  # both are shortest
                else:
                    assert s.bound <= e.bound  # the SCC lasso is fair but not necessarily shortest


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_symbolic_and_explicit_agree(path: Path) -> None:
    """Same verdict from Spacer/BMC/lassos and from explicit enumeration (BFS, SCCs)."""
    _agree(load_file(path).machines)


def test_symbolic_and_explicit_agree_on_small_slots() -> None:
    _agree([m for m in load_text(SMALL_SLOTS).machines if m.name.endswith("Small")])


def test_certificate_recheck_rejects_a_non_inductive_invariant() -> None:
    m = load_file(EXAMPLES / "slots.rf").machines[0]
    enc = Encoding(m)
    prop = enc.invariant(m.invariant("single_finaliser").expr, enc.base)
    # The property alone is not inductive: a WRITING slot with one finaliser can be finalised again.
    with pytest.raises(CertificateRejected, match="not preserved by finalise"):
        recheck(enc, "forall s: Slot. |fin[s]| <= 1", prop, Limits(0, 10_000))
    with pytest.raises(CertificateRejected, match="does not imply"):
        recheck(enc, "true", prop, Limits(0, 10_000))


LOCK = """
machine Lock
  type Proc = 0..1
  var holder: Proc? = none
  var waiting: set Proc = {}
  action request(p: Proc)
    requires not (p in waiting) and holder != p
    waiting := waiting union {p}
  action enter(p: Proc)
    requires p in waiting and holder == none
    holder := p
    waiting := waiting minus {p}
  action leave(p: Proc)
    requires holder == p
    holder := none
  fair strong enter
  liveness served: forall p: Proc. p in waiting leads_to holder == p
"""


@pytest.mark.parametrize(("stutter", "verdict"), [("always", "violated"), ("deadlock", "holds")])
def test_a_run_may_stop_unless_fairness_obliges_it(stutter: str, verdict: str) -> None:
    """No `fair leave`: by default the holder may keep the lock forever (a stutter loop), as in
    TLA+; only with the whole system weakly fair (--fair-next) is leave forced."""
    m = load_text(LOCK).machines[0]
    for opt in (Options(engine="explicit", stutter=stutter), Options(graph_states=0, stutter=stutter)):
        r = MachineChecker(m, opt).check("served")
        assert r.verdict == verdict, (opt.engine, stutter)
        if verdict == "violated":
            assert r.replayed and r.trace is not None and r.trace[-1].action == STUTTER
            assert r.trace[-1].state.count(None) == 0  # the holder holds on: not a deadlock


def test_lasso_replay_checks_fairness() -> None:
    """The unfair reader's lasso is not a run of the fair design: replay must say why."""
    machines = {m.name: m for m in load_file(EXAMPLES / "slots.rf").machines}
    unfair = MachineChecker(machines["SlotsLiveUnfairReader"], Options()).check("ready_is_consumed")
    assert unfair.verdict == "violated" and unfair.loop_start is not None and unfair.trace is not None
    fair = machines["SlotsLive"]
    with pytest.raises(ReplayMismatch, match="not fair to consume"):
        replay_lasso(Interpreter(fair), fair.live("ready_is_consumed"), {"s": 0}, unfair.trace, unfair.loop_start)


def test_replay_rejects_a_forged_trace() -> None:
    m = load_file(EXAMPLES / "slots.rf").machines[1]
    checker = MachineChecker(m, Options())
    res = checker.check("single_finaliser")
    assert res.trace is not None
    forged = list(res.trace)
    forged[2] = Step("consume", (5,), forged[2].state)  # slot 5 is not READY there
    with pytest.raises(ReplayMismatch):
        replay(checker.interp, res.prop, checker.interp.invariants[res.prop], forged)


def test_k_induction_and_unknown_are_honest() -> None:
    m = load_text("""
machine Count
  var x: 0..20 = 0
  action inc
    requires x < 20
    x := x + 1
  invariant below: x <= 20
  invariant never_twelve: x != 12
  expect never_twelve violated
""").machines[0]
    shallow = MachineChecker(m, Options(engine="bmc", depth=5)).check("never_twelve")
    assert shallow.verdict == "unknown" and shallow.bound == 5
    deep = MachineChecker(m, Options(engine="auto")).check("never_twelve")
    assert deep.verdict == "violated" and deep.bound == 12


DEEP = """
machine Deep
  type B = 0..15
  var x: 0..40 = 0
  var bits: B -> bool = false
  action inc
    requires x < 32
    x := x + 1
  action flip(b: B)
    requires x < 32
    bits[b] := not bits[b]
"""


def test_a_deep_bug_in_a_large_instance_is_found_without_tuning_the_depth() -> None:
    """2^16 x 33 states, a deadlock 32 steps deep: past BMC's default depth and the state graph's
    size, with Z3 given no budget at all; the depth-first search still finds it, and replays it."""
    m = load_text(DEEP).machines[0]
    opt = Options(graph_states=1_000, rlimit=1, first_rlimit=1)
    r = MachineChecker(m, opt).check("deadlock_free")
    assert (r.verdict, r.method, r.replayed) == ("violated", "dfs", True)
    assert r.bound is not None and r.bound >= 32 and r.states is not None and r.states < 1_000
    again = MachineChecker(m, opt).check("deadlock_free")
    assert again.trace == r.trace  # deterministic

"""Engines are checked against each other and against independent checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from racefree.spec.loader import load_file, load_text
from racefree.verification.certificate import CertificateRejected, recheck
from racefree.verification.encode import Encoding
from racefree.verification.engine import MachineChecker, Options
from racefree.verification.replay import ReplayMismatch, replay
from racefree.verification.result import Step

from .conftest import EXAMPLES, SPECS

ALL = sorted(EXAMPLES.glob("*.rf")) + sorted((SPECS / "ok").glob("*.rf")) + sorted(
    (SPECS / "counterexample").glob("*.rf"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_symbolic_and_explicit_agree(path: Path) -> None:
    """Same verdict from Spacer/BMC and from breadth-first enumeration; same shortest length."""
    for m in load_file(path).machines:
        symbolic = MachineChecker(m, Options(engine="auto")).check_all()
        explicit = MachineChecker(m, Options(engine="explicit")).check_all()
        for s, e in zip(symbolic, explicit, strict=True):
            assert s.verdict == e.verdict, (m.name, s.prop)
            if s.verdict == "violated":
                assert s.bound == e.bound  # both are shortest
                assert s.replayed


def test_certificate_recheck_rejects_a_non_inductive_invariant() -> None:
    m = load_file(EXAMPLES / "slots.rf").machines[0]
    enc = Encoding(m)
    prop = m.invariant("single_finaliser").expr
    # The property alone is not inductive: a WRITING slot with one finaliser can be finalised again.
    with pytest.raises(CertificateRejected, match="not preserved by finalise"):
        recheck(enc, "forall s: Slot. |fin[s]| <= 1", prop, timeout_ms=10_000)
    with pytest.raises(CertificateRejected, match="does not imply"):
        recheck(enc, "true", prop, timeout_ms=10_000)


def test_replay_rejects_a_forged_trace() -> None:
    m = load_file(EXAMPLES / "slots.rf").machines[1]
    checker = MachineChecker(m, Options())
    (res,) = [r for r in checker.check_all()]
    assert res.trace is not None
    forged = list(res.trace)
    forged[2] = Step("consume", (0,), forged[2].state)  # slot 0 is not READY there
    with pytest.raises(ReplayMismatch):
        replay(checker.interp, res.prop, forged)


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

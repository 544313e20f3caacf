"""The reference interpreter and the Z3 encoding agree, state by state, on random expressions."""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st
from racefree.spec import ir
from racefree.spec.checker import check_expression
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_text
from racefree.verification.encode import NONE, Encoding

from .strategies import SCOPE, bool_exprs

MACHINE = load_text(SCOPE).machines[0]
INTERP = Interpreter(MACHINE)
ENC = Encoding(MACHINE)

states = st.tuples(
    st.integers(0, 3), st.integers(0, 3), st.booleans(), st.frozensets(st.integers(0, 3)),
    st.tuples(*[st.integers(0, 1)] * 4), st.one_of(st.none(), st.integers(0, 3)),
)


def _cells_of(state: tuple) -> list[z3.ExprRef]:
    x, y, flag, members, phase, holder = state
    vals: list = [x, y, flag, *[i in members for i in range(4)], *phase, NONE if holder is None else holder]
    return [z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(v) for v in vals]


@settings(max_examples=300, deadline=None)
@given(bool_exprs(), states)
def test_interpreter_and_encoder_agree(e: ir.Expr, state: tuple) -> None:
    typed = check_expression(MACHINE, e)
    expected = INTERP.eval_pred(typed)(state)
    encoded = z3.simplify(ENC.invariant(typed, _cells_of(state)))
    assert z3.is_true(encoded) or z3.is_false(encoded)
    assert z3.is_true(encoded) == expected


def test_bounded_types_are_part_of_the_guard() -> None:
    m = load_text("""
machine M
  var c: 0..2 = 2
  var d: 0..2 = 0
  action inc
    c := c + 1
  action poke(k: 0..3)
    requires k > d
    d := k
""").machines[0]
    interp = Interpreter(m)
    assert interp.step(interp.init, "inc", ()) is None  # 3 is outside 0..2: not enabled
    assert interp.step(interp.init, "poke", (2,)) == (2, 2)
    assert interp.step(interp.init, "poke", (3,)) is None


def test_updates_are_simultaneous() -> None:
    m = load_text("""
machine Swap
  var a: 0..1 = 0
  var b: 0..1 = 1
  action swap
    a := b
    b := a
""").machines[0]
    interp = Interpreter(m)
    assert interp.step(interp.init, "swap", ()) == (1, 0)

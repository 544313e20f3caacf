"""``for q: T do ... end``: one copy of the body per value of T, unrolled by the type checker."""

from __future__ import annotations

import pytest
from racefree.spec.errors import SpecError
from racefree.spec.loader import load_text
from racefree.spec.parser import parse_text
from racefree.spec.printer import show_action

HEAD = """
machine M
  type P = 0..2
  enum E { A, B }
  var x: P -> 0..3 = 0
  var y: E -> bool = false
  var z: bool -> bool = false
  action bump(p: P)
"""

LOOPED = HEAD + """    for q: P do
      x[q] := if q == p then x[q] + 1 else x[q]
    end
    for e: E do
      y[e] := e == B or y[e]
    end
    for b: bool do
      if b then
        z[b] := x[p] > 0
      end
    end
"""

UNROLLED = HEAD + """    x[0] := if 0 == p then x[0] + 1 else x[0]
    x[1] := if 1 == p then x[1] + 1 else x[1]
    x[2] := if 2 == p then x[2] + 1 else x[2]
    y[A] := A == B or y[A]
    y[B] := B == B or y[B]
    if false then
      z[false] := x[p] > 0
    end
    if true then
      z[true] := x[p] > 0
    end
"""


def test_a_loop_is_its_unrolled_copies() -> None:
    looped, = load_text(LOOPED + "    requires x[p] < 3\n").machines
    unrolled, = load_text(UNROLLED + "    requires x[p] < 3\n").machines
    assert looped.actions == unrolled.actions


def test_the_loop_prints_as_written_and_reads_back() -> None:
    raw = parse_text(LOOPED, "<t>").machines[0]
    shown = "\n".join(show_action(raw.members[-1].node))
    assert "    for q: P do\n      x[q] := " in shown and "    for b: bool do\n      if b then" in shown
    again, = load_text(HEAD.replace("  action bump(p: P)\n", shown + "\n")).machines
    assert again.actions == load_text(LOOPED).machines[0].actions


@pytest.mark.parametrize(("body", "code", "message"), [
    ("    for q: P do\n      x[0] := 1\n    end\n", "RF012", "x[0]"),
    ("    for p: P do\n      x[p] := 1\n    end\n", "RF011", "'p'"),
    ("    for q: int do\n      x[0] := 1\n    end\n", "RF022", "loop variable 'q'"),
])
def test_bad_loops_are_located_errors(body: str, code: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        load_text(HEAD + body)
    d = err.value.diagnostic
    assert d.code == code and message in d.message and d.loc.line >= 9, (d.code, d.message)


def test_a_loop_over_a_symmetric_type_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        load_text("machine M\n  symmetric type S = 0..1\n  var x: S -> bool = false\n  action a\n"
                  "    for s: S do\n      x[s] := true\n    end\n")
    assert err.value.diagnostic.code == "RF029" and err.value.diagnostic.hint

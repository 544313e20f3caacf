"""Symmetric types: the checker's rules, and the explicit engine's orbit reduction checked against
an independent canonicalisation of every state of the unreduced graph (plain Python, on the
interpreter's state tuples)."""

from __future__ import annotations

from itertools import permutations, product
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from racefree.spec import ir
from racefree.spec.errors import SpecError
from racefree.spec.interp import Interpreter
from racefree.spec.ir import TInt, TMap, TOption, TSet, Ty
from racefree.spec.loader import load_text
from racefree.verification.bfs import PackedMachine, search
from racefree.verification.engine import MachineChecker, Options
from racefree.verification.symmetry import Symmetry

ROOT = Path(__file__).resolve().parent.parent
SLOTS = (ROOT / "spec" / "examples" / "slots.rf").read_text()

TOKEN = """
machine Token
  symmetric type P = 0..2
  enum Pc { IDLE, WAIT, CS }
  var pc: P -> Pc = IDLE
  var holder: P? = none
  var queue: set P = {}
  action request(p: P)
    requires pc[p] == IDLE
    pc[p] := WAIT
    queue := queue union {p}
  action enter(p: P)
    requires pc[p] == WAIT and holder == none
    pc[p] := CS
    holder := p
    queue := queue minus {p}
  action leave(p: P)
    requires pc[p] == CS and holder == p
    pc[p] := IDLE
    holder := none
  invariant mutex: forall p: P, q: P. pc[p] == CS and pc[q] == CS implies p == q
  expect mutex holds

machine TokenRacy extends Token
  override action enter(p: P)
    requires pc[p] == WAIT
    pc[p] := CS
    holder := p
    queue := queue minus {p}
  expect mutex violated
"""

# R is key-only with tuples wider than 16 bits (the general sort path); T wider than 64 (hashed).
WIDE = """
machine Wide
  symmetric type R = 0..2
  symmetric type T = 0..1
""" + "".join(f"  var {x}: R -> 0..7 = 0\n" for x in "abcde") + """  var f: R -> 0..3 = 0
  var done: set R = {}
""" + "".join(f"  var u{i}: T -> 0..255 = 0\n" for i in range(1, 10)) + """  action step(r: R)
    requires a[r] < 3
    a[r] := a[r] + 1
    e[r] := min(e[r] + 2, 7)
  action finish(r: R)
    requires a[r] == 3 and not r in done
    done := done union {r}
  action tick(t: T)
    requires u1[t] < 2
    u1[t] := u1[t] + 1
    u9[t] := 200
  invariant fine: forall r: R. a[r] <= 3
"""


# S is sorted, and its sets live in a map keyed by W (enumerated): W's permutations reorder S's tuples.
MIXED = """
machine Mixed
  symmetric type S = 0..2
  symmetric type W = 0..1
  var owner: S -> W? = none
  var has: W -> set S = {}
  action grab(w: W, s: S)
    requires owner[s] == none
    owner[s] := w
    has[w] := has[w] union {s}
  action put(w: W, s: S)
    requires owner[s] == w
    owner[s] := none
    has[w] := has[w] minus {s}
  invariant consistent: forall w: W, s: S. (s in has[w]) == (owner[s] == w)
"""


def machine(text: str, name: str, **consts: int) -> ir.Machine:
    if consts:
        text += f"\nmachine Sized extends {name}\n" + "".join(f"  override const {k} = {v}\n" for k, v in consts.items())
        name = "Sized"
    return next(m for m in load_text(text).machines if m.name == name)


# ------------------------------------------------------------------ an independent canonicalisation
def permute(ty: Ty, value: Any, perms: dict[str, tuple[int, ...]]) -> Any:
    """``value`` (interpreter encoding) with each symmetric type's value lo + i renamed lo + perm[i]."""
    match ty:
        case TMap(key, val):
            entries = [permute(val, x, perms) for x in value]
            if isinstance(key, TInt) and key.sym is not None:
                moved: list[Any] = [None] * len(entries)
                for i, x in enumerate(entries):
                    moved[perms[key.sym][i]] = x
                return tuple(moved)
            return tuple(entries)
        case TInt(lo, _, sym) if sym is not None:
            assert lo is not None
            return lo + perms[sym][value - lo]
        case TOption(base):
            return None if value is None else permute(base, value, perms)
        case TSet(elem):
            return frozenset(permute(elem, x, perms) for x in value)
    return value


def orbit(m: ir.Machine, state: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    types = [t for t in m.types if t.symmetric]
    sizes = {t.name: len(ir.domain(_symmetric(m, t.name))) for t in types}
    out = set()
    for choice in product(*[list(permutations(range(sizes[t.name]))) for t in types]):
        perms = {t.name: p for t, p in zip(types, choice, strict=True)}
        out.add(tuple(permute(v.ty, x, perms) for v, x in zip(m.vars, state, strict=True)))  # type: ignore[arg-type]
    return out


def _symmetric(m: ir.Machine, name: str) -> TInt:
    for v in m.vars:
        for ty in (v.ty, getattr(v.ty, "key", None), getattr(v.ty, "value", None), getattr(v.ty, "elem", None),
                   getattr(v.ty, "base", None)):
            if isinstance(ty, TInt) and ty.sym == name:
                return ty
            if isinstance(ty, TOption | TSet):
                inner = ty.base if isinstance(ty, TOption) else ty.elem
                if isinstance(inner, TInt) and inner.sym == name:
                    return inner
    raise AssertionError(name)


CASES = [
    pytest.param(SLOTS, "Slots", {"W": 2, "S": 3}, id="slots: Slot sorted, Writer enumerated"),
    pytest.param(SLOTS, "SlotsForgetfulConsume", {"W": 2, "S": 2}, id="slots-bug"),
    pytest.param(TOKEN, "Token", {}, id="token: enumerated only"),
    pytest.param(TOKEN, "TokenRacy", {}, id="token-bug"),
    pytest.param(WIDE, "Wide", {}, id="wide and hashed tuples"),
    pytest.param(MIXED, "Mixed", {}, id="sets of the sorted type in a map keyed by an enumerated one"),
]


@pytest.mark.parametrize(("text", "name", "consts"), CASES)
def test_orbits_match_an_independent_canonicalisation(text: str, name: str, consts: dict[str, int]) -> None:
    m = machine(text, name, **consts)
    pm = PackedMachine(m, Interpreter(m))
    full = search(pm, 10**7)
    assert full.complete
    states = pm.layout.decode_all(full.states)
    orbits = {min(orbit(m, st), key=repr) for st in states}
    sym = Symmetry(pm.layout, pm.fingerprints)
    reduced = search(pm, 10**7, symmetry=sym)
    assert reduced.complete and reduced.size == len(orbits) < full.size
    representatives = pm.layout.decode_all(reduced.states)
    assert {min(orbit(m, st), key=repr) for st in representatives} == orbits  # one state per orbit
    sizes = sym.orbit_sizes(reduced.states)
    assert sizes.tolist() == [len(orbit(m, st)) for st in representatives]
    assert int(sizes.sum()) == full.size
    # the same properties fail, at the same depth, and every reduced trace is a concrete run
    assert set(reduced.first_bad) == set(full.first_bad)
    interp = Interpreter(m)
    for prop, i in reduced.first_bad.items():
        trace = reduced.path(i)
        assert len(trace) - 1 == full.depth[full.first_bad[prop]]
        st = interp.init
        for step in trace[1:]:
            st = interp.step(st, step.action, step.args)
            assert st == step.state
        assert not pm.holds(pm.layout.encode(st)[None, :])[prop][0]


def test_canonical_is_the_same_for_every_permutation_of_a_state() -> None:
    m = machine(SLOTS, "Slots", W=3, S=4)
    pm = PackedMachine(m, Interpreter(m))
    sym = Symmetry(pm.layout, pm.fingerprints)
    found = search(pm, 10**6)
    for st in pm.layout.decode_all(found.states[::97]):
        images = sorted(orbit(m, st), key=repr)
        _, fps = sym.canonical(np.stack([pm.layout.encode(x) for x in images]))
        assert len(set(fps.tolist())) == 1


def test_the_engine_reports_orbits_and_unreduced_counts() -> None:
    m = machine(SLOTS, "Slots")  # W = 3, S = 6
    [holds, _] = MachineChecker(m, Options(engine="explicit", symmetry="count")).check_all()
    assert holds.verdict == "holds" and holds.states == 196
    assert "up to symmetry of Writer, Slot (196 orbits of 117,649 states)" in holds.detail
    [plain, _] = MachineChecker(m, Options(engine="explicit", symmetry="off")).check_all()
    assert plain.verdict == "holds" and plain.states == 117_649 and "symmetry" not in plain.detail


def test_reduced_and_unreduced_verdicts_agree() -> None:
    for text, name in [(SLOTS, "SlotsForgetfulConsume"), (TOKEN, "TokenRacy"), (TOKEN, "Token")]:
        m = machine(text, name, **({"W": 2, "S": 3} if text is SLOTS else {}))
        on = MachineChecker(m, Options(engine="explicit")).check_all()
        off = MachineChecker(m, Options(engine="explicit", symmetry="off")).check_all()
        assert [(r.prop, r.verdict, r.bound) for r in on] == [(r.prop, r.verdict, r.bound) for r in off]
        assert all(r.replayed for r in on if r.verdict == "violated")


BAD = """
machine M
  symmetric type T = 0..2
  type U = 0..2
  var x: T -> bool = false
  var o: U -> T? = none
  var s: set T = {}
{decl}
  action a(t: T, u: U)
{body}
"""


@pytest.mark.parametrize(("decl", "body", "message"), [
    ("", "    o[u] := 0", "'o[u]' mixes a plain 0..0 with symmetric type 'T'"),
    ("", "    requires t < t", "'<' on a value of symmetric type 'T'"),
    ("", "    requires t + 1 == t", "'+' on a value of symmetric type 'T'"),
    ("", "    requires min(t, t) == t", "'min' on a value of symmetric type 'T'"),
    ("", "    x[u] := true", "the map key mixes a plain 0..2 with symmetric type 'T'"),
    ("", "    requires t == u", "'==' mixes symmetric type 'T' with a plain 0..2"),
    ("", "    requires (o[u] ?? 0) == t", "'??' mixes symmetric type 'T' with a plain 0..0"),
    ("", "    requires u in s", "'in' mixes a plain 0..2 with symmetric type 'T'"),
    ("", "    s := {0}", "'s' mixes a plain set 0..0 with symmetric type 'T'"),
    ("", "    o[u] := if true then t else 1", "this conditional mixes symmetric type 'T' with a plain 1..1"),
    ("  var w: T", "    x[t] := true", "variable 'w' of symmetric type 'T' has no initial value"),
])
def test_the_checker_rejects_asymmetric_uses(decl: str, body: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        load_text(BAD.replace("{decl}", decl).replace("{body}", body))
    d = err.value.diagnostic
    assert d.code == "RF029" and d.message == message and d.hint
    assert d.loc.line >= 8


def test_symmetric_uses_the_checker_accepts() -> None:
    load_text(BAD.replace("{decl}", "  var h: T? = none").replace("{body}", (
        "    x[t] := not x[t]\n    o[u] := t\n    s := s union {t}\n    h := if t in s then t else h\n"
        "    requires (o[u] ?? t) == t and |{v: T | x[v]}| <= 2")))
    with pytest.raises(SpecError) as err:
        load_text("machine M\n  symmetric type B = bool\n  var x: B = false\n")
    assert err.value.diagnostic.code == "RF025"


NOTES = TOKEN + """
machine TokenNotes extends Token
  var count: 0..1 = 0
  action bump(p: P)
    requires pc[p] == CS
    count := count + 1
  action never(p: P)
    requires pc[p] == CS and holder == none
    pc[p] := IDLE
  invariant quiet: forall p: P. (pc[p] == CS and holder == none) implies false
"""


def test_diagnostics_from_orbits_match_the_full_graph() -> None:
    m = machine(NOTES, "TokenNotes")

    def findings(mode: str) -> list[tuple[str, str, int | None]]:
        checker = MachineChecker(m, Options(symmetry=mode))  # type: ignore[arg-type]
        # what a check leaves behind when no property needed the state graph: the orbits, or the graph
        assert (checker.reduced() if mode == "on" else checker.graph()) is not None
        return [(f.kind, f.subject, None if f.example is None else len(f.example)) for f in checker.diagnostics()]

    on = findings("on")
    assert on == findings("off")
    assert {(k, s) for k, s, _ in on} == {("never_enabled", "never"), ("out_of_bounds", "bump"), ("vacuous", "quiet")}

"""Split a grounded property into conjuncts and slice the system to each one's cone of influence.

The cone of a conjunct is the least set of cells containing the conjunct's cells
and, for every ground action that writes one of them, the cells its guard and
those updates read. Actions that write no cell of the cone leave the slice
unchanged, so the slice's reachable projections are exactly the full system's:
safety of the conjunct on the slice is safety on the full machine, and a slice
counterexample is a full counterexample (the omitted actions are not needed).

Slices that are equal up to renaming (symmetric slots, writers...) get the same
``key``, so engines can solve one and reuse the answer for its twins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import z3

from .encode import Encoding, GroundAction, Renaming, literal


@dataclass
class Slice:
    prop: z3.BoolRef  # over the base frame
    cells: list[int]  # sorted cone
    actions: list[int]  # indices into enc.actions of the ground actions that write the cone
    key: str  # canonical form hash: equal keys = same problem up to renaming


def conjuncts(e: z3.BoolRef) -> list[z3.BoolRef]:
    e = z3.simplify(e)
    if z3.is_and(e):
        return [c for child in e.children() for c in conjuncts(child)]  # type: ignore[arg-type]
    return [e]


def slice_property(enc: Encoding, prop: z3.BoolRef,
                   action_tag: Callable[[GroundAction], str] | None = None) -> Slice:
    """The cone of ``prop``; ``action_tag`` adds per-action facts (e.g. fairness) to the key."""
    cone = set(enc.free_cells(prop))
    actions = enc.actions
    changed = True
    while changed:
        changed = False
        for ga in actions:
            written = cone.intersection(ga.updates)
            if not written:
                continue
            needed = enc.free_cells(ga.guard)
            for c in written:
                needed |= enc.free_cells(ga.updates[c])
            if not needed <= cone:
                cone |= needed
                changed = True
    cells = sorted(cone)
    relevant = [i for i, ga in enumerate(actions) if cone.intersection(ga.updates)]
    key = _canonical_key(enc, prop, cells, [actions[i] for i in relevant], action_tag)
    return Slice(prop, cells, relevant, key)


def canonical_frame(enc: Encoding, cells: list[int], tag: str = "") -> list[z3.ExprRef]:
    return [z3.Bool(f"v{j}{tag}") if enc.cells[c].is_bool else z3.Int(f"v{j}{tag}")
            for j, c in enumerate(cells)]


def _canonical_key(enc: Encoding, prop: z3.BoolRef, cells: list[int], actions: list[GroundAction],
                   action_tag: Callable[[GroundAction], str] | None) -> str:
    canon = canonical_frame(enc, cells)
    renaming = Renaming([enc.base[c] for c in cells], canon)

    def ren(e: z3.ExprRef) -> str:
        return renaming(e).sexpr()

    sig = [";".join(f"{enc.cells[c].values}" for c in cells), ren(prop),
           ",".join(str(enc.init_values[c]) for c in cells)]
    acts = []
    for ga in actions:
        ups = ",".join(f"{j}:{ren(ga.updates[c])}" for j, c in enumerate(cells) if c in ga.updates)
        acts.append(f"{ren(ga.guard)}=>{ups}" + (f"#{action_tag(ga)}" if action_tag else ""))
    sig += sorted(acts)
    return hashlib.sha256("\n".join(sig).encode()).hexdigest()



@dataclass
class SliceSystem:
    """A slice as a transition system over canonically named variables (``v0, v1, ...``).

    ``cur``/``nxt`` are the current and next frames; ``moves`` lists, per ground action
    (by index into ``enc.actions``), its guard over ``cur`` and its next values over ``cur``.
    Used to pose CHCs for safety (prove.py) and liveness (liveness.py) alike.
    """

    cells: list[int]
    cur: list[z3.ExprRef]
    nxt: list[z3.ExprRef]
    dom: z3.BoolRef  # the type bounds of ``cur``
    init: z3.BoolRef  # ``cur`` equals the initial state
    moves: list[tuple[int, z3.BoolRef, list[z3.ExprRef]]]
    base: list[z3.ExprRef]  # the encoding's constants for ``cells``
    _renaming: tuple[list[z3.ExprRef], Renaming] | None = None  # the last frame's, reused

    def at(self, e: z3.ExprRef, frame: list[z3.ExprRef]) -> z3.ExprRef:
        """``e`` (over the encoding's base frame) evaluated in ``frame``."""
        if self._renaming is None or self._renaming[0] is not frame:
            self._renaming = (frame, Renaming(self.base, frame))
        return self._renaming[1](e)


def slice_system(enc: Encoding, cells: list[int], actions: list[int]) -> SliceSystem:
    cur, nxt = canonical_frame(enc, cells), canonical_frame(enc, cells, "'")
    base = [enc.base[c] for c in cells]
    sys_ = SliceSystem(cells, cur, nxt, z3.BoolVal(True), z3.BoolVal(True), [], base)
    sys_.dom = sys_.at(enc.domain_constraint(enc.base, cells), cur)  # type: ignore[assignment]
    sys_.init = z3.And([v == literal(enc.init_values[c]) for v, c in zip(cur, cells, strict=True)]
                       or [z3.BoolVal(True)])
    for a in actions:
        ga = enc.actions[a]
        sys_.moves.append((a, sys_.at(ga.guard, cur), [sys_.at(ga.updates.get(c, enc.base[c]), cur) for c in cells]))  # type: ignore[misc]
    return sys_

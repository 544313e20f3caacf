"""Symmetry reduction for the fast explicit engine: one state per orbit.

A ``symmetric type`` (``spec/checker.py`` enforces it) has interchangeable values: no order,
arithmetic, literals or plain integers touch them, and every parameter of that type ranges over
all of it. So permuting its values maps reachable states to reachable states, and every safety
property has the same truth value on a state and on its permutations. Breadth-first search can
therefore keep one representative per orbit: its depth is the orbit's distance from the initial
state, so a first violation is still at the shortest depth, and a trace through representatives
is turned into a concrete one step by step (``Search.path``) and replayed through the interpreter.

The representative (canonical form) of a packed row:
- one symmetric type that only ever indexes maps or holds set elements (a *key-only* type, like
  ``Slot`` in ``owner: Slot -> Writer?``) is canonicalised by sorting: its values are ordered by
  the tuple of cells each one indexes (its map entries, its bit in each set of it), which no
  permutation of that type changes;
- every other symmetric type (whose values are stored, like ``Writer`` there) by enumeration:
  each permutation of them is applied and the smallest fingerprint of the sorted results wins.
The minimum over a whole orbit is a function of the orbit, so equal orbits meet in the visited
set. When the sorted type's tuples fit in 16 bits (the common case) nothing but those tuples and
the other cells is permuted: an enumerated permutation acts on a tuple through a lookup table,
and a candidate's fingerprint is taken from its sorted tuples and other cells; only the winner
is unpacked into a row. ``orbit_sizes`` counts the states each representative stands for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import permutations, product
from typing import Any

import numpy as np
from racefree.spec import ir
from racefree.spec.ir import TInt, TMap, TOption, TSet, Ty

from .fingerprint import combine, hash_words
from .vector import Layout

MAX_PERMUTATIONS = 5040  # permutations enumerated per state (7!); beyond it symmetry is not used
LUT_KEY_BITS = 16  # sorted tuples up to this wide are permuted through a lookup table


class SymmetryTooLarge(Exception):
    """The symmetric types' permutations are too many to enumerate per state."""


@dataclass
class _Acts:
    """Where one symmetric type's values live in a packed row."""

    name: str
    n: int
    keyed: list[np.ndarray] = field(default_factory=list)  # per map keyed by it: its n columns
    keyed_cells: set[int] = field(default_factory=set)
    values: list[int] = field(default_factory=list)  # cells holding one of its values (int code)
    options: list[int] = field(default_factory=list)  # cells holding one or none (0: none)
    sets: list[int] = field(default_factory=list)  # cells holding a set of them (bit mask)

    @property
    def key_only(self) -> bool:
        return not self.values and not self.options and not (set(self.sets) & self.keyed_cells)


def symmetric_types(m: ir.Machine) -> list[str]:
    """The machine's symmetric types, in declaration order."""
    return [t.name for t in m.types if t.symmetric]


class Symmetry:
    """Canonical forms of packed rows under the permutations of a machine's symmetric types."""

    def __init__(self, layout: Layout, fingerprints: Callable[[np.ndarray], np.ndarray]) -> None:
        self.layout = layout
        self._row_fingerprints = fingerprints
        acts: dict[str, _Acts] = {}

        def of(ty: Ty) -> _Acts | None:
            if isinstance(ty, TInt) and ty.sym is not None:
                return acts.setdefault(ty.sym, _Acts(ty.sym, len(ir.domain(ty))))
            return None

        for v in layout.machine.vars:
            where = layout.of_var[v.name]
            cols = where if isinstance(where, list) else [where]
            value_ty = v.ty.value if isinstance(v.ty, TMap) else v.ty
            if isinstance(v.ty, TMap) and (a := of(v.ty.key)) is not None:
                a.keyed.append(np.array(cols))
                a.keyed_cells.update(cols)
            match value_ty:
                case TInt() if (a := of(value_ty)) is not None:
                    a.values += cols
                case TOption(base) if (a := of(base)) is not None:
                    a.options += cols
                case TSet(elem) if (a := of(elem)) is not None:
                    a.sets += cols
        self.types = [acts[name] for name in symmetric_types(layout.machine) if name in acts]
        self.sorted = max((a for a in self.types if a.key_only), key=lambda a: a.n, default=None)
        self.enumerated = [a for a in self.types if a is not self.sorted]
        count = math.prod(math.factorial(a.n) for a in self.enumerated)
        if count > MAX_PERMUTATIONS:
            raise SymmetryTooLarge(f"{count:,} permutations of {', '.join(a.name for a in self.enumerated)} "
                                   f"per state (at most {MAX_PERMUTATIONS:,} are enumerated)")
        self.group_order = count * (math.factorial(self.sorted.n) if self.sorted is not None else 1)
        perms = list(product(*[[np.array(p) for p in permutations(range(a.n))] for a in self.enumerated]))
        width = len(layout.cells)
        a = self.sorted
        # the cells a value of the sorted type indexes: per map keyed by it, its columns (one
        # per value); per set of it, the set's column (bit i per value i)
        self._key_fields: list[tuple[np.ndarray, int, bool]] = [] if a is None else \
            [(cols, layout.cells[int(cols[0])].bits, False) for cols in a.keyed] + [(np.array([c]), 1, True) for c in a.sets]
        self._key_bits = sum(bits for _, bits, _ in self._key_fields)
        in_keys = {int(c) for cols, _, _ in self._key_fields for c in cols}
        self._rest = np.array([c for c in range(width) if c not in in_keys], dtype=np.int64)
        # The lookup tables recode a tuple's fields; they cannot reorder them, which an enumerated
        # type does when it keys a map holding sets of the sorted type (`has: W -> set S`).
        moved_by_enumerated = {int(c) for e in self.enumerated for cols in e.keyed for c in cols}
        self._fast = a is not None and self._key_bits <= LUT_KEY_BITS and not (in_keys & moved_by_enumerated)
        if self._fast:
            # per permutation: its lookup table on sorted tuples, and its action on the other cells
            self._perms: list[tuple[np.ndarray | None, Callable[[np.ndarray], np.ndarray]]] = [
                (self._key_lut(p), self._permuter(p, self._rest)) for p in perms]
        else:
            self._perms = [(None, self._permuter(p, np.arange(width))) for p in perms]

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.types]

    # ------------------------------------------------------------ enumerated types
    def _value_luts(self, perms: tuple[np.ndarray, ...]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """For one permutation of each enumerated type (value i becomes ``perm[i]``): where each
        column's new content comes from, and the new code of each code in the cells it recodes."""
        src = np.arange(len(self.layout.cells))
        luts: dict[int, np.ndarray] = {}
        for a, p in zip(self.enumerated, perms, strict=True):
            for cols in a.keyed:
                src[cols] = src[cols[np.argsort(p)]]  # the entry of key perm[i] is the old entry of key i
            for c in a.values:
                luts[c] = p
            for c in a.options:
                luts[c] = np.concatenate(([0], p + 1))
            for c in a.sets:
                masks = np.arange(1 << a.n)
                luts[c] = np.bitwise_or.reduce([((masks >> i) & 1) << int(p[i]) for i in range(a.n)])
        return src, {c: lut for c, lut in luts.items() if not np.array_equal(lut, np.arange(len(lut)))}

    def _permuter(self, perms: tuple[np.ndarray, ...], cols: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The permutation's action on the columns ``cols`` of rows (given as ``X[:, cols]``); a
        fresh array. Columns of one map move together, so a recoded column keeps its code table."""
        src, luts = self._value_luts(perms)
        position = {int(c): i for i, c in enumerate(cols)}
        gather = np.array([position[int(src[c])] for c in cols], dtype=np.int64)
        moved = [(position[c], lut.astype(self.layout.dtype)) for c, lut in luts.items() if c in position]
        same = bool(np.array_equal(gather, np.arange(len(cols))))

        def apply(X: np.ndarray) -> np.ndarray:
            Y = X.copy() if same else X[:, gather]
            for i, lut in moved:
                Y[:, i] = lut[Y[:, i]]
            return Y

        return apply

    def _key_lut(self, perms: tuple[np.ndarray, ...]) -> np.ndarray:
        """The permutation's action on sorted-type tuples (every code of ``_key_bits`` bits)."""
        _, luts = self._value_luts(perms)
        codes = np.arange(1 << self._key_bits, dtype=np.uint64)
        out = np.zeros_like(codes)
        shift = self._key_bits
        for cols, bits, _ in self._key_fields:
            shift -= bits
            field_ = (codes >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
            lut = luts.get(int(cols[0]))
            if lut is not None:
                field_ = lut.astype(np.uint64).take(field_, mode="clip")  # codes out of range never occur
            out |= field_ << np.uint64(shift)
        return out

    # ------------------------------------------------------------ the sorted type
    def _sort_keys(self, X: np.ndarray) -> np.ndarray:
        """Per row and value of the sorted type: the tuple of cells it indexes (its map entries, its
        bit in each set of it) as one integer: bit-packed when it fits in 64 bits, else hashed."""
        a = self.sorted
        assert a is not None
        key = np.zeros((len(X), a.n), dtype=np.uint64)
        exact = self._key_bits <= 64
        for cols, bits, is_set in self._key_fields:
            part = X[:, cols].astype(np.uint64)
            if is_set:  # bit i belongs to value i
                part = (part >> np.arange(a.n, dtype=np.uint64)) & np.uint64(1)
            key = (key << np.uint64(bits)) | part if exact else combine(key, part)
        return key

    def _unpack(self, keys: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Rows from sorted bit-packed tuples and the other cells."""
        a = self.sorted
        assert a is not None
        X = np.empty((len(keys), len(self.layout.cells)), dtype=self.layout.dtype)
        X[:, self._rest] = rest
        shift = self._key_bits
        for cols, bits, is_set in self._key_fields:
            shift -= bits
            part = (keys >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
            if is_set:
                X[:, cols[0]] = (part << np.arange(a.n, dtype=np.uint64)).sum(axis=1)
            else:
                X[:, cols] = part
        return X

    def _sort(self, X: np.ndarray) -> np.ndarray:
        """The rows with the sorted type's values ordered by their tuples."""
        a = self.sorted
        if a is None:
            return X
        keys = self._sort_keys(X)
        if self._key_bits <= 64:  # the tuples hold the cells themselves
            keys.sort(axis=1)
            return self._unpack(keys, X[:, self._rest])
        order = np.argsort(keys, axis=1, kind="stable")  # new position i: old value order[:, i]
        Y = X.copy()
        for cols, _, is_set in self._key_fields:
            if is_set:
                moved = (X[:, cols[0]].astype(np.uint64)[:, None] >> order.astype(np.uint64)) & np.uint64(1)
                Y[:, cols[0]] = (moved << np.arange(a.n, dtype=np.uint64)).sum(axis=1)
            else:
                Y[:, cols] = np.take_along_axis(X[:, cols], order, axis=1)
        return Y

    # ------------------------------------------------------------ candidates and canonical forms
    def _fingerprint(self, keys: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """The fast path's fingerprint of sorted tuples and other cells (exact when they fit in 64 bits)."""
        parts = [(keys[:, i], self._key_bits) for i in range(keys.shape[1])]
        parts += [(rest[:, i].astype(np.uint64), self.layout.cells[int(c)].bits) for i, c in enumerate(self._rest)]
        words, word, used = [], np.zeros(len(keys), dtype=np.uint64), 0
        for part, bits in parts:
            if used + bits > 64:
                words.append(word)
                word, used = np.zeros(len(keys), dtype=np.uint64), 0
            word = word | (part << np.uint64(used))
            used += bits
        if not words:
            return word
        return hash_words(np.stack([*words, word], axis=1))

    def _candidates(self, X: np.ndarray) -> Iterator[tuple[np.ndarray, Any]]:
        """Per enumerated permutation: the fingerprints of the sorted permuted rows, and what
        builds those rows (``_rows``)."""
        if self._fast:
            keys, rest = self._sort_keys(X), X[:, self._rest]
            for lut, apply in self._perms:
                assert lut is not None
                k = lut[keys]
                k.sort(axis=1)
                r = apply(rest)
                yield self._fingerprint(k, r), (k, r)
        else:
            for _, apply in self._perms:
                Y = self._sort(apply(X))
                yield self._row_fingerprints(Y), Y

    def _rows(self, payload: Any) -> np.ndarray:
        return self._unpack(*payload) if self._fast else payload

    def _select(self, payload: Any, where: np.ndarray, other: Any) -> Any:
        if self._fast:
            return tuple(np.where(where[:, None], x, y) for x, y in zip(payload, other, strict=True))
        return np.where(where[:, None], payload, other)

    def canonical(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's orbit representative and its fingerprint (``fingerprints`` of it)."""
        best_fp, best = None, None
        for fp, payload in self._candidates(X):
            if best_fp is None:
                best_fp, best = fp, payload
                continue
            smaller = fp < best_fp
            best = self._select(payload, smaller, best)
            best_fp = np.where(smaller, fp, best_fp)
        assert best_fp is not None
        return self._rows(best), best_fp

    def fingerprints(self, C: np.ndarray) -> np.ndarray:
        """The fingerprints of canonical rows, as ``canonical`` gives them."""
        if self._fast:
            return self._fingerprint(self._sort_keys(C), C[:, self._rest])
        return self._row_fingerprints(C)

    def orbit_sizes(self, C: np.ndarray) -> np.ndarray:
        """How many states each canonical row stands for: the group's order over its stabiliser's.

        An enumerated permutation fixes a canonical row c up to the sorted type iff sorting its
        result gives c again; the sorted type's own stabiliser has one element per way of
        reordering its values with equal tuples (the product of their multiplicities' factorials).
        """
        fp = self.fingerprints(C)
        fixing = np.zeros(len(C), dtype=np.int64)
        for candidate, _ in self._candidates(C):
            fixing += candidate == fp
        ties = np.ones(len(C), dtype=np.float64)
        if self.sorted is not None:
            keys = self._sort_keys(C)  # sorted already, so equal tuples are adjacent
            run = np.ones(len(C), dtype=np.int64)
            for i in range(1, self.sorted.n):
                run = np.where(keys[:, i] == keys[:, i - 1], run + 1, 1)
                ties *= run  # multiplies in 1, 2, ..., k along each run of k equal tuples
        return np.rint(self.group_order / (fixing * ties)).astype(np.int64)

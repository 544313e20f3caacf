"""The fast explicit engine: breadth-first search over packed states, a whole batch at a time.

States are rows of small integers (``vector.Layout``); every ground action's guard and updates
are numpy code compiled once per machine (``vector.Compiler``), run over a batch of up to
``BATCH`` states. Visited states are kept as 64-bit fingerprints: the exact bit-packed state
when it fits in 64 bits (no collision is possible), a hash of it otherwise (the collision
probability is reported, as other fingerprinting model checkers do).

The order of discovery is exactly the reference engine's (``explicit.state_graph``): states are
expanded in the order they were found, each one's successors in ground action order (actions
in declaration order, parameters in domain order), and a state's parent is the first state that
reached it. So state numbers, parent links, shortest traces and lassos are the interpreter
graph's, whichever engine built it; ``tests/test_fast_engine.py`` checks this on every bundled
and regression spec, and every trace is still replayed through the interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .fair import Csr
from .fingerprint import hash_words
from .result import Step, Stutter
from .symmetry import Symmetry
from .vector import Compiler, Layout, Term

if TYPE_CHECKING:  # diagnostics imports Z3; the explicit engines do not need it
    from .diagnostics import Question

BATCH = 1 << 16  # states expanded per batch: large enough that numpy's per-call cost is amortised


class PackedMachine:
    """One machine's ground actions and properties as numpy functions over packed states."""

    def __init__(self, m: ir.Machine, interp: Interpreter) -> None:
        self.machine = m
        self.layout = Layout(m)
        comp = Compiler(m, self.layout)
        self.ground: list[tuple[str, tuple[Any, ...]]] = []
        self.blocked: dict[str, list[Term]] = {}  # per action: where each instance is blocked by a bound alone
        self.compiler = comp
        guards: list[Term] = []
        blocked: list[Term] = []
        self._updates: list[tuple[list[int], str | None]] = []
        sources = []
        for a in m.actions:
            for args in product(*[ir.domain(p.ty) for p in a.params]):  # type: ignore[arg-type]
                g, b, upd = comp.ground(a, tuple(args))
                blocked.append(b)
                self.blocked.setdefault(a.name, []).append(b)
                if g is False:
                    continue
                k = len(self.ground)
                self.ground.append((a.name, tuple(args)))
                guards.append(g)
                cells = list(upd)
                fn = f"update{k}" if cells else None
                if fn is not None:
                    sources.append(comp.em.function(fn, list(upd.values())))
                self._updates.append((cells, fn))
        props: dict[str, Term] = {i.name: comp.predicate(i.expr) for i in m.invariants}
        terminal = comp.ops.any_([comp.predicate(t.expr) for t in m.terminals])
        props[ir.DEADLOCK_FREE] = comp.ops.or_(comp.ops.any_(guards), terminal)
        props[ir.IN_BOUNDS] = comp.ops.not_(comp.ops.any_(blocked))
        self.prop_names = list(props)
        sources.append(comp.em.function("guards", guards))
        sources.append(comp.em.function("props", list(props.values())))
        ns: dict[str, Any] = {"np": np}
        exec(compile("\n".join(sources), f"<racefree:{m.name}:packed>", "exec"), ns)  # generated from the IR
        self._guards: Callable[[np.ndarray], list[Any]] = ns["guards"]
        self._props: Callable[[np.ndarray], list[Any]] = ns["props"]
        self._fns = ns
        self.init = self.layout.encode(interp.init)
        self._packing = _packing(self.layout)
        # Per cell: (word, shift, the mask that clears it in its word).
        self._where = [(w, np.uint64(shift), ~(np.uint64(2 ** self.layout.cells[c].bits - 1) << np.uint64(shift)))
                       for w, cells in enumerate(self._packing) for c, shift in cells]

    # -------------------------------------------------------------- batches
    def successors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (source row, ground action, successor, its fingerprint) of a batch, grouped by
        ground action. A successor's packed words are its source's with the written cells replaced."""
        n = len(X)
        words = self._words(X)
        srcs, acts, outs, fps = [], [], [], []
        for k, g in enumerate(self._guards(X)):
            if g is False:
                continue
            rows = np.arange(n) if g is True else np.flatnonzero(g)
            if not len(rows):
                continue
            nxt = X[rows]
            w = words[rows]
            cells, fn = self._updates[k]
            if fn is not None:
                for c, v in zip(cells, self._fns[fn](nxt), strict=True):
                    nxt[:, c] = v
                    word, shift, mask = self._where[c]
                    w[:, word] &= mask
                    w[:, word] |= nxt[:, c].astype(np.uint64) << shift
            srcs.append(rows)
            acts.append(np.full(len(rows), k, dtype=np.int64))
            outs.append(nxt)
            fps.append(w[:, 0] if w.shape[1] == 1 else hash_words(w))
        if not srcs:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, X.shape[1]), X.dtype),
                    np.zeros(0, np.uint64))
        return np.concatenate(srcs), np.concatenate(acts), np.concatenate(outs), np.concatenate(fps)

    def enabled(self, states: np.ndarray) -> list[np.ndarray]:
        """Per batch of states: per ground action, whether it is enabled in each state."""
        out = []
        for i in range(0, len(states), BATCH):
            X = states[i:i + BATCH]
            out.append(np.array([np.broadcast_to(np.asarray(g, dtype=bool), (len(X),)) for g in self._guards(X)]).T
                       if self.ground else np.zeros((len(X), 0), bool))
        return out

    def _words(self, X: np.ndarray) -> np.ndarray:
        """The packed 64-bit words of each row (one word when the state fits: then it is the state)."""
        out = np.zeros((len(X), len(self._packing)), dtype=np.uint64)
        for c, (word, shift, _) in enumerate(self._where):
            out[:, word] |= X[:, c].astype(np.uint64) << shift
        return out

    def holds(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every safety property (invariants, deadlock_free, in_bounds) on every row of a batch."""
        return {name: np.broadcast_to(np.asarray(v, dtype=bool), (len(X),))
                for name, v in zip(self.prop_names, self._props(X), strict=True)}

    def fingerprints(self, X: np.ndarray) -> np.ndarray:
        """64-bit fingerprints: the exact packed state when it fits, a hash of its packed words otherwise."""
        w = self._words(X)
        return w[:, 0] if w.shape[1] == 1 else hash_words(w)

    def evaluator(self, terms: list[Term]) -> Callable[[np.ndarray], list[np.ndarray]]:
        """A function computing more boolean terms of this machine's compiler on a batch."""
        ns: dict[str, Any] = {"np": np}
        exec(compile(self.compiler.em.function("extra", terms), f"<racefree:{self.machine.name}:extra>", "exec"), ns)
        fn = ns["extra"]
        return lambda X: [np.broadcast_to(np.asarray(v, dtype=bool), (len(X),)) for v in fn(X)]

    def where(self, terms: list[Term], states: np.ndarray) -> list[np.ndarray]:
        """Each boolean term on every state (in batches)."""
        fn = self.evaluator(terms)
        parts = [fn(states[i:i + BATCH]) for i in range(0, len(states), BATCH)]
        return [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, bool) for k in range(len(terms))]

    @property
    def exact(self) -> bool:
        """Whether fingerprints are the states themselves (no collision possible)."""
        return len(self._packing) == 1


def _packing(layout: Layout) -> list[list[tuple[int, int]]]:
    """Cells packed into 64-bit words: per word, (cell, shift)."""
    words: list[list[tuple[int, int]]] = [[]]
    used = 0
    for i, c in enumerate(layout.cells):
        if used + c.bits > 64:
            words.append([])
            used = 0
        words[-1].append((i, used))
        used += c.bits
    return words


class _Seen:
    """The set of visited fingerprints -> state numbers: sorted runs, merged like an LSM tree."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def find(self, fps: np.ndarray) -> np.ndarray:
        """The state number of each fingerprint, -1 where unseen."""
        out = np.full(len(fps), -1, dtype=np.int64)
        for keys, ids in self.runs:
            pos = np.searchsorted(keys, fps)
            pos[pos == len(keys)] = 0
            hit = keys[pos] == fps
            out[hit] = ids[pos[hit]]
        return out

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add sorted, new ``keys``."""
        self.runs.append((keys, ids))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (k1, i1), (k2, i2) = self.runs[-2], self.runs[-1]
            keys = np.concatenate((k1, k2))
            order = np.argsort(keys, kind="stable")
            self.runs[-2:] = [(keys[order], np.concatenate((i1, i2))[order])]


class _Grow:
    """An array that grows by doubling (rows of states, or per-state numbers)."""

    def __init__(self, dtype: Any, width: int | None = None) -> None:
        self.shape_tail = () if width is None else (width,)
        self.data = np.zeros((1 << 16, *self.shape_tail), dtype=dtype)
        self.n = 0

    def extend(self, x: np.ndarray) -> None:
        need = self.n + len(x)
        if need > len(self.data):
            bigger = np.zeros((max(need, 2 * len(self.data)), *self.shape_tail), dtype=self.data.dtype)
            bigger[:self.n] = self.data[:self.n]
            self.data = bigger
        self.data[self.n:need] = x
        self.n = need

    @property
    def view(self) -> np.ndarray:
        return self.data[:self.n]


@dataclass
class Search:
    """The outcome of one breadth-first search."""

    pm: PackedMachine
    states: np.ndarray  # packed rows, in discovery (breadth-first) order
    parent: np.ndarray  # the state that first reached each state (-1: the initial state)
    via: np.ndarray  # the ground action that first reached it
    depth: np.ndarray
    complete: bool  # False: stopped at max_states or when every property had failed
    first_bad: dict[str, int]  # property -> the first state (in BFS order) where it fails
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (src, ground action, dst), by src
    seconds: float = 0.0
    symmetry: Symmetry | None = None  # states are orbit representatives (symmetry.py)
    _decoded: dict[int, State] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.states)

    def state(self, i: int) -> State:
        st = self._decoded.get(i)
        if st is None:
            st = self._decoded[i] = self.pm.layout.decode(self.states[i])
        return st

    def path(self, i: int) -> list[Step]:
        """The shortest path from the initial state to state ``i`` (the BFS tree); under symmetry,
        a concrete path through the orbits on that path."""
        if self.symmetry is not None:
            return self._concrete_path(i)
        steps = []
        while self.parent[i] >= 0:
            name, args = self.pm.ground[int(self.via[i])]
            steps.append(Step(name, args, self.state(i)))
            i = int(self.parent[i])
        steps.append(Step(None, (), self.state(0)))
        return steps[::-1]

    def _concrete_path(self, i: int) -> list[Step]:
        """Each step from the concrete state reached so far: the first successor (in ground
        action order) in the next orbit on the representatives' path. One exists because
        permutations map steps to steps."""
        assert self.symmetry is not None
        chain = [i]
        while self.parent[chain[-1]] >= 0:
            chain.append(int(self.parent[chain[-1]]))
        pm, row = self.pm, self.pm.init
        steps = [Step(None, (), pm.layout.decode(row))]
        for j in reversed(chain[:-1]):
            _, acts, nxt, _ = pm.successors(row[None, :])
            _, fps = self.symmetry.canonical(nxt)
            k = int(np.flatnonzero(fps == self.symmetry.fingerprints(self.states[j][None, :])[0])[0])
            row = nxt[k]
            name, args = pm.ground[int(acts[k])]
            steps.append(Step(name, args, pm.layout.decode(row)))
        return steps

    @cached_property
    def states_held(self) -> int:
        """How many states the search stands for: its size, or under symmetry its orbits' sizes summed."""
        return self.size if self.symmetry is None else int(self.symmetry.orbit_sizes(self.states).sum())

    @property
    def collision_probability(self) -> float:
        """An upper bound on the chance that two distinct states shared a fingerprint (0 if exact)."""
        return 0.0 if self.pm.exact else min(1.0, self.size * self.size / 2.0 ** 65)


def search(pm: PackedMachine, max_states: int, *, edges: bool = False, props: list[str] | None = None,
           on_progress: Callable[[int, int], None] | None = None, symmetry: Symmetry | None = None) -> Search:
    """Breadth-first search from the initial state, in the reference engine's order.

    ``props``: stop early once each of them has failed somewhere (their first failures are
    shortest); None checks every property without stopping. ``edges``: keep every transition
    (the state graph, for liveness). Stops after ``max_states`` states (``complete`` False).
    ``symmetry``: keep one state per orbit (safety only: no edges).
    """
    assert not (edges and symmetry is not None), "the state graph for liveness is not reduced"
    start = time.perf_counter()
    width = len(pm.layout.cells)
    states = _Grow(pm.layout.dtype, width)
    parent, via, depth = _Grow(np.int64), _Grow(np.int32), _Grow(np.int32)
    init, init_fp = (pm.init[None, :], pm.fingerprints(pm.init[None, :])) if symmetry is None \
        else symmetry.canonical(pm.init[None, :])
    states.extend(init)
    parent.extend(np.array([-1]))
    via.extend(np.array([-1]))
    depth.extend(np.array([0]))
    seen = _Seen()
    seen.add(init_fp, np.array([0]))
    wanted = pm.prop_names if props is None else props
    first_bad: dict[str, int] = {}
    edge_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    checked = 0  # states whose properties have been evaluated
    head = 0
    complete = True
    while head < states.n:
        checked = _check(pm, states.view, checked, states.n, wanted, first_bad)
        if props is not None and len(first_bad) == len(props):
            complete = False
            break
        if states.n > max_states:
            complete = False
            break
        batch = states.view[head:head + BATCH]
        src, act, nxt, fps = pm.successors(batch)
        if symmetry is not None:
            nxt, fps = symmetry.canonical(nxt)
        head += len(batch)
        if not len(fps):
            continue
        # The reference order of transitions: by source state, then ground action.
        src += head - len(batch)
        key = src * len(pm.ground) + act
        by_fp = np.argsort(fps)
        sorted_fps = fps[by_fp]
        boundary = np.concatenate(([True], sorted_fps[1:] != sorted_fps[:-1]))
        starts = np.flatnonzero(boundary)
        targets = seen.find(sorted_fps[starts])  # state number of each distinct successor, -1: new
        novel = np.flatnonzero(targets < 0)
        if len(novel):
            keys_by_fp = key[by_fp]
            firsts = np.minimum.reduceat(keys_by_fp, starts)  # where each successor is first reached
            counts = np.diff(np.append(starts, len(keys_by_fp)))
            at_first = by_fp[keys_by_fp == np.repeat(firsts, counts)]  # that transition (keys are unique)
            novel = novel[np.argsort(firsts[novel])]  # new states are numbered in order of discovery
            at = at_first[novel]
            ids = states.n + np.arange(len(novel))
            targets[novel] = ids
            states.extend(nxt[at])
            parents = src[at]
            parent.extend(parents)
            via.extend(act[at].astype(np.int32))
            depth.extend(depth.view[parents] + 1)
            fresh = np.sort(novel)
            seen.add(sorted_fps[starts][fresh], targets[fresh])
        if edges:
            dst = np.empty(len(key), dtype=np.int64)
            dst[by_fp] = targets[np.cumsum(boundary) - 1]
            by_key = np.argsort(key, kind="stable")
            edge_parts.append((src[by_key], act[by_key], dst[by_key]))
        if on_progress is not None:
            on_progress(int(depth.view[head - 1]), states.n)
    _check(pm, states.view, checked, states.n, wanted, first_bad)
    complete = complete and states.n <= max_states
    all_edges = None
    if edges and complete:
        all_edges = tuple(np.concatenate(p) if p else np.zeros(0, np.int64) for p in zip(*edge_parts, strict=True)) \
            if edge_parts else (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))
    return Search(pm, states.view, parent.view, via.view, depth.view, complete, first_bad, all_edges,  # type: ignore[arg-type]
                  time.perf_counter() - start, symmetry)


def _check(pm: PackedMachine, states: np.ndarray, lo: int, hi: int, wanted: list[str], first_bad: dict[str, int]) -> int:
    """Evaluate the properties on states lo..hi-1 and record the first failure of each."""
    todo = [p for p in wanted if p not in first_bad]
    for start in range(lo, hi, BATCH):
        if not todo:
            break
        block = states[start:min(hi, start + BATCH)]
        holds = pm.holds(block)
        for p in todo:
            bad = np.flatnonzero(~holds[p])
            if len(bad):
                first_bad[p] = start + int(bad[0])
        todo = [p for p in todo if p not in first_bad]
    return hi


class PackedGraph:
    """The whole state graph of a finite instance, found by the fast engine: the same states,
    numbers, parents and edges as ``explicit.StateGraph``. Liveness (``fair.py``) reads its edge
    arrays (``csr``) and evaluates triggers and goals on the packed states; ``states`` and
    ``edges`` in the interpreter graph's shape are built only when asked for."""

    def __init__(self, found: Search, stutter: Stutter) -> None:
        self.found = found
        self.stutter = stutter

    @property
    def size(self) -> int:
        return self.found.size

    @cached_property
    def states(self) -> list[State]:
        return self.found.pm.layout.decode_all(self.found.states)

    @cached_property
    def edges(self) -> list[list[tuple[str, tuple[Any, ...], int]]]:
        """Per state, its edges in ``explicit.StateGraph``'s shape (to compare the two graphs)."""
        csr = self.csr
        dst = csr.dst.tolist()
        return [[(*csr.step(e), dst[e]) for e in range(csr.indptr[i], csr.indptr[i + 1])] for i in range(self.size)]

    @cached_property
    def parent(self) -> list[tuple[int, str, tuple[Any, ...]] | None]:
        ground = self.found.pm.ground
        return [None if p < 0 else (p, *ground[a]) for p, a in zip(self.found.parent.tolist(),  # type: ignore[misc]
                                                                      self.found.via.tolist(), strict=True)]

    def path(self, i: int) -> list[Step]:
        return self.found.path(i)

    def state(self, i: int) -> State:
        return self.found.state(i)

    @cached_property
    def csr(self) -> Csr:
        """The edges with a stutter self-loop where a run may stay put (after each state's other edges)."""
        src, act, dst = self.found.edges  # type: ignore[misc]
        n = self.size
        if self.stutter == "always":
            still = np.arange(n)
        else:
            still = np.flatnonzero(np.bincount(src, minlength=n) == 0)
        src = np.concatenate((src, still))
        order = np.argsort(src, kind="stable")
        label = np.concatenate((act, np.full(len(still), -1)))[order]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(src, minlength=n))))
        return Csr(indptr, np.concatenate((dst, still))[order], label, self.found.pm.ground)

    def live_masks(self, interp: Interpreter, lv: ir.Liveness, binding: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Per state: (the trigger of this instance of ``lv`` holds, its goal does not), on the packed states."""
        pm = self.found.pm
        trigger = True if lv.trigger is None else pm.compiler.predicate(lv.trigger, binding)
        goal = pm.compiler.predicate(lv.goal, binding)
        t, g = pm.where([trigger, goal], self.found.states)
        return t, ~g

    def first_state(self, q: Question) -> int | None:
        """The first state (in BFS order) where a diagnostic question's predicate holds, evaluated
        on the packed states: some instance of a premise, or of an action blocked by a bound."""
        pm = self.found.pm
        if q.premise is not None:
            premise, envs = q.premise
            terms = [pm.compiler.predicate(premise, env) for env in envs]
        else:
            assert q.kind == "out_of_bounds"
            terms = pm.blocked[q.subject]
        hits = pm.where([pm.compiler.ops.any_(terms)], self.found.states)[0]
        first = np.flatnonzero(hits)
        return int(first[0]) if len(first) else None

    def first_violation(self, holds: Callable[[State], bool], name: str | None = None) -> list[Step] | None:
        """A shortest trace to a state where the property fails (by name when it is one of the
        machine's safety properties, evaluated on the packed states; else state by state)."""
        if name is not None and name in self.found.pm.prop_names:
            i = self.found.first_bad.get(name)
            return None if i is None else self.path(i)
        for i, st in enumerate(self.states):
            if not holds(st):
                return self.path(i)
        return None

    def taken_actions(self) -> set[str]:
        """The actions some edge takes (enabled in some reachable state; a search without edges,
        one state per orbit, evaluates the guards: an action's instances are enabled in a state
        iff their permutations are in its permutations)."""
        pm = self.found.pm
        if self.found.edges is not None:
            acts = np.unique(self.found.edges[1])
        else:
            acts = np.flatnonzero(np.any([g.any(axis=0) for g in pm.enabled(self.found.states)], axis=0))
        return {pm.ground[int(a)][0] for a in acts}

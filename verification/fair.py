"""Fair cycles in a state graph: the explicit liveness check, on arrays.

A liveness property ``P leads_to Q`` (or ``eventually Q``) fails exactly when some reachable
state where the trigger holds (the initial state, for ``eventually``) reaches, through states
where the goal never holds, a *fair* strongly connected component: a cycle that takes every
weakly fair action that is enabled all along it, and every strongly fair action that is
enabled anywhere on it. SCCs come from scipy (``connection="strong"``); strong fairness is
Emerson-Lei refinement (drop the states where a strong action the component never takes is
enabled, and decompose again). Every step is a vectorised pass over the edge arrays, so
graphs of millions of edges take seconds, not minutes.

The component chosen is the fair one holding the smallest state number (states are numbered
breadth-first), so the lasso does not depend on the SCC algorithm's order; the prefix and the
loop are shortest paths, in the same breadth-first order as everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import product
from typing import Any

import numpy as np
from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.values import State
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .result import STUTTER, Step

STUTTER_LABEL = -1


@dataclass
class Csr:
    """A state graph's edges grouped by source: state i's out-edges are ``indptr[i]:indptr[i+1]``,
    each a successor and a label (an index into ``labels``, or -1 for a stutter self-loop)."""

    indptr: np.ndarray
    dst: np.ndarray
    label: np.ndarray
    labels: list[tuple[str, tuple[Any, ...]]]

    @property
    def size(self) -> int:
        return len(self.indptr) - 1

    @cached_property
    def src(self) -> np.ndarray:
        return np.repeat(np.arange(self.size), np.diff(self.indptr))

    @cached_property
    def reverse(self) -> Csr:
        order = np.argsort(self.dst, kind="stable")
        indptr = np.concatenate(([0], np.cumsum(np.bincount(self.dst, minlength=self.size))))
        return Csr(indptr, self.src[order], self.label[order], self.labels)

    def out_edges(self, nodes: np.ndarray) -> np.ndarray:
        """Indices of the out-edges of ``nodes``, node by node in their order, each node's in edge order."""
        starts = self.indptr[nodes]
        counts = self.indptr[nodes + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        return offsets + np.arange(total)

    def step(self, e: int) -> tuple[str, tuple[Any, ...]]:
        k = int(self.label[e])
        return (STUTTER, ()) if k == STUTTER_LABEL else self.labels[k]

    @classmethod
    def from_lists(cls, edges: list[list[tuple[str, tuple[Any, ...], int]]]) -> Csr:
        """From ``explicit.StateGraph``'s per-state edge lists."""
        ids: dict[tuple[str, tuple[Any, ...]], int] = {}
        dst, label, counts = [], [], []
        for out in edges:
            counts.append(len(out))
            for name, args, j in out:
                dst.append(j)
                label.append(STUTTER_LABEL if name == STUTTER else ids.setdefault((name, args), len(ids)))
        indptr = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        return cls(indptr, np.array(dst, dtype=np.int64), np.array(label, dtype=np.int64), list(ids))


def fair_instances(interp: Interpreter) -> list[tuple[str, tuple, bool]]:
    """Every ground instance of every fair action: (action, args, strong)."""
    out = []
    for f in interp.machine.fairness:
        ca = interp.actions[f.action]
        out += [(f.action, args, f.strong) for args in product(*ca.param_domains)]
    return out


def fair_violation(interp: Interpreter, lv: ir.Liveness, graph: Any) -> tuple[list[Step], int, dict] | None:
    """A fair lasso violating some instance of ``lv`` (trace, loop start, binding) in a state graph
    (``explicit.StateGraph`` or ``bfs.PackedGraph``: ``csr``, ``live_masks``, ``state``)."""
    csr: Csr = graph.csr
    ids = {key: k for k, key in enumerate(csr.labels)}
    # Fair instances that label no edge are never enabled: they oblige nothing.
    fair = [(ids[(a, args)], strong) for a, args, strong in fair_instances(interp) if (a, args) in ids]
    for binding in bindings(lv):
        triggered, avoid = graph.live_masks(interp, lv, binding)
        roots = avoid & triggered
        if lv.kind == "eventually":
            roots = roots & (np.arange(csr.size) == 0)
        if not roots.any():
            continue
        region = _reach(csr, roots, avoid)
        scc = _fair_scc(csr, region, fair)
        if scc is not None:
            trace, loop_start = _lasso(graph.state, csr, roots, avoid, scc, fair)
            return trace, loop_start, binding
    return None


def bindings(lv: ir.Liveness) -> Iterator[dict[str, Any]]:
    """Every value of the property's ``forall`` prefix: one ground instance each."""
    for values in product(*[ir.domain(b.ty) for b in lv.binders]):  # type: ignore[arg-type]
        yield {b.name: v for b, v in zip(lv.binders, values, strict=True)}


def _reach(csr: Csr, roots: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The states reachable from ``roots`` (a mask) through ``allowed`` states."""
    seen = roots.copy()
    frontier = np.flatnonzero(roots)
    while len(frontier):
        nxt = csr.dst[csr.out_edges(frontier)]
        nxt = np.unique(nxt[allowed[nxt] & ~seen[nxt]])
        seen[nxt] = True
        frontier = nxt
    return seen


def _fair_scc(csr: Csr, nodes: np.ndarray, fair: list[tuple[int, bool]]) -> np.ndarray | None:
    """A fair SCC inside ``nodes`` (a mask): the one with the smallest state number, or None."""
    n = csr.size
    fair_of = np.full(len(csr.labels) + 1, -1, dtype=np.int64)  # label + 1 -> index into fair
    strong = np.array([s for _, s in fair] + [False], dtype=bool)
    for i, (k, _) in enumerate(fair):
        fair_of[k + 1] = i
    nf = max(1, len(fair))
    src, dst = csr.src, csr.dst
    fair_index = fair_of[csr.label + 1]
    while nodes.any():
        inside = nodes[src] & nodes[dst]
        graph = csr_matrix((np.ones(int(inside.sum()), dtype=np.int8), (src[inside], dst[inside])), shape=(n, n))
        _, comp = connected_components(graph, directed=True, connection="strong")
        comp = np.where(nodes, comp, -1)
        intra = inside & (comp[src] == comp[dst])
        ncomp = int(comp.max()) + 1
        cycle = np.zeros(ncomp, dtype=bool)  # a single state without a self-loop is no cycle
        cycle[comp[src[intra]]] = True
        size = np.bincount(comp[nodes], minlength=ncomp)
        # (component, fair instance) pairs: taken on the component; enabled in how many of its states
        # (a ground action is deterministic: at most one edge per state and instance).
        taken_edges = intra & (fair_index >= 0)
        taken = np.unique(comp[src[taken_edges]] * nf + fair_index[taken_edges])
        out_of = nodes[src] & (fair_index >= 0)
        enabled, count = np.unique(comp[src[out_of]] * nf + fair_index[out_of], return_counts=True)
        is_taken = np.isin(enabled, taken)
        unfair = strong[enabled % nf] & ~is_taken  # a strong instance enabled on it that it never takes
        refine = np.zeros(ncomp, dtype=bool)
        refine[enabled[unfair] // nf] = True
        weak_fail = np.zeros(ncomp, dtype=bool)
        weak_fail[enabled[~is_taken & (count == size[enabled // nf])] // nf] = True
        ok = cycle & ~refine & ~weak_fail
        if ok.any():
            first = np.full(ncomp, n, dtype=np.int64)
            where = np.flatnonzero(nodes)
            np.minimum.at(first, comp[where], where)
            best = int(np.argmin(np.where(ok, first, n)))
            return comp == best
        # Emerson-Lei: a fair cycle in such a component avoids every state where that instance is enabled.
        bad_pairs = enabled[unfair]
        bad_states = src[out_of][np.isin(comp[src[out_of]] * nf + fair_index[out_of], bad_pairs)]
        keep = nodes & cycle[np.maximum(comp, 0)] & refine[np.maximum(comp, 0)]
        keep[bad_states] = False
        if not (keep != nodes).any():
            return None
        nodes = keep
    return None


def _shortest_path(csr: Csr, src: int, targets: np.ndarray, allowed: np.ndarray | None) -> list[tuple[int, int]]:
    """Edges (index, successor) of a shortest path from ``src`` to a target state, staying inside
    ``allowed``; the first target in breadth-first order. [] when ``src`` is a target."""
    if targets[src]:
        return []
    parent = np.full(csr.size, -1, dtype=np.int64)
    seen = np.zeros(csr.size, dtype=bool)
    seen[src] = True
    frontier = np.array([src])
    while len(frontier):
        edges = csr.out_edges(frontier)
        succ = csr.dst[edges]
        ok = ~seen[succ] if allowed is None else ~seen[succ] & allowed[succ]
        edges, succ = edges[ok], succ[ok]
        found, first = np.unique(succ, return_index=True)
        order = np.argsort(first)  # in order of discovery, as a queue would find them
        found, first = found[order], first[order]
        seen[found] = True
        parent[found] = edges[first]
        hits = found[targets[found]]
        if len(hits):
            out = []
            j = int(hits[0])
            while j != src:
                e = int(parent[j])
                out.append((e, j))
                j = int(csr.src[e])
            return out[::-1]
        frontier = found
    raise AssertionError("target unreachable")


def _lasso(state: Callable[[int], State], csr: Csr, roots: np.ndarray, avoid: np.ndarray, scc: np.ndarray,
           fair: list[tuple[int, bool]]) -> tuple[list[Step], int]:
    # The first root (in state order) from which the component is reachable through goal-avoiding states.
    reaches = _reach(csr.reverse, scc & avoid, avoid)
    root = int(np.flatnonzero(roots & reaches)[0])
    at_root = np.zeros(csr.size, dtype=bool)
    at_root[root] = True
    prefix = _shortest_path(csr, 0, at_root, None) + _shortest_path(csr, root, scc, avoid)
    entry = prefix[-1][1] if prefix else 0
    # The loop visits, for every fair instance, a state where it is disabled or an edge taking it.
    loop: list[tuple[int, int]] = []
    cur = entry
    src, dst = csr.src, csr.dst
    for k, strong in fair:
        labelled = csr.label == k
        takes = np.flatnonzero(labelled & scc[src] & scc[dst])
        enabled = np.zeros(csr.size, dtype=bool)
        enabled[src[labelled]] = True
        disabled = scc & ~enabled
        if not strong and disabled.any():
            hop = _shortest_path(csr, cur, disabled, scc)
        elif len(takes):
            e = int(takes[0])
            at = np.zeros(csr.size, dtype=bool)
            at[src[e]] = True
            hop = _shortest_path(csr, cur, at, scc) + [(e, int(dst[e]))]
        else:
            continue
        loop += hop
        cur = hop[-1][1] if hop else cur
    if not loop:  # no obligations: any cycle through the entry
        e = int(next(i for i in csr.out_edges(np.array([entry])) if scc[dst[i]]))
        loop.append((e, int(dst[e])))
        cur = int(dst[e])
    at_entry = np.zeros(csr.size, dtype=bool)
    at_entry[entry] = True
    loop += _shortest_path(csr, cur, at_entry, scc)
    trace = [Step(None, (), state(0))] + [Step(*csr.step(e), state(j)) for e, j in prefix + loop]
    return trace, len(prefix)

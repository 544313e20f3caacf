"""Breadth-first enumeration of the finite instance through the reference interpreter.

Independent of Z3: it is the oracle the symbolic engines are compared with.
BFS order makes the first violation found a shortest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.values import State

from .result import STUTTER, Step, Stutter


@dataclass
class Exploration:
    states: int
    complete: bool  # False when max_states stopped it
    violations: dict[str, list[Step]]  # property -> shortest trace
    depth: int


def explore(interp: Interpreter, props: dict[str, Callable[[State], bool]], *, max_states: int = 5_000_000,
            on_progress: Callable[[int, int], None] | None = None) -> Exploration:
    parent: dict[State, tuple[State, str, tuple] | None] = {interp.init: None}
    checks = list(props.items())
    violations: dict[str, list[Step]] = {}

    def check(state: State) -> None:
        for name, holds in checks:
            if name not in violations and not holds(state):
                violations[name] = _path(parent, state)

    check(interp.init)
    frontier = [interp.init]
    depth = 0
    successors = [ca.successors for ca in interp.actions.values()]
    names = list(interp.actions)
    while frontier and len(violations) < len(checks):
        nxt: list[State] = []
        for st in frontier:
            for name, succ in zip(names, successors, strict=True):
                for args, new in succ(st):
                    if new not in parent:
                        parent[new] = (st, name, args)
                        nxt.append(new)
                        check(new)
            if len(parent) > max_states:
                return Exploration(len(parent), False, violations, depth)
        frontier = nxt
        depth += 1
        if on_progress:
            on_progress(depth, len(parent))
    complete = not frontier
    return Exploration(len(parent), complete, violations, depth)


def _path(parent: dict[State, tuple[State, str, tuple] | None], state: State) -> list[Step]:
    steps = []
    cur: State | None = state
    while cur is not None:
        link = parent[cur]
        if link is None:
            steps.append(Step(None, (), cur))
            break
        prev, name, args = link
        steps.append(Step(name, args, cur))
        cur = prev
    return steps[::-1]


# ------------------------------------------------------------------ liveness

Edge = tuple[str, tuple, int]  # (action, args, successor index); STUTTER for a self-loop where a run may stay put


@dataclass
class StateGraph:
    """Every reachable state, in breadth-first order, with its outgoing edges and BFS parent."""

    states: list[State]
    edges: list[list[Edge]]
    parent: list[tuple[int, str, tuple] | None]

    def path(self, i: int) -> list[Step]:
        """The shortest path from the initial state to state ``i`` (BFS tree)."""
        steps = []
        link = self.parent[i]
        while link is not None:
            prev, name, args = link
            steps.append(Step(name, args, self.states[i]))
            i, link = prev, self.parent[prev]
        steps.append(Step(None, (), self.states[0]))
        return steps[::-1]

    @property
    def size(self) -> int:
        return len(self.states)

    def taken_actions(self) -> set[str]:
        """The actions some edge takes (enabled in some reachable state)."""
        return {a for out in self.edges for a, _, _ in out if a != STUTTER}

    def state(self, i: int) -> State:
        return self.states[i]

    def live_masks(self, interp: Interpreter, lv: ir.Liveness, binding: dict) -> tuple[list[bool], list[bool]]:
        """Per state: (the trigger of this instance of ``lv`` holds, its goal does not)."""
        trigger, goal = interp.live_preds(lv, binding)
        return [trigger(s) for s in self.states], [not goal(s) for s in self.states]

    def first_violation(self, holds: Callable[[State], bool], name: str | None = None) -> list[Step] | None:
        """A shortest trace to a state where ``holds`` is false (states are in BFS order)."""
        for i, st in enumerate(self.states):
            if not holds(st):
                return self.path(i)
        return None


def state_graph(interp: Interpreter, max_states: int, stutter: Stutter = "always",
                on_progress: Callable[[int], None] | None = None) -> StateGraph | None:
    """Every reachable state and its outgoing edges; None when there are more than ``max_states``.

    ``stutter``: where a run may stay put forever (a STUTTER self-loop): in every state (the
    usual semantics: only fairness obliges an action to happen), or only where nothing is
    enabled (``deadlock``: the whole system is weakly fair, TLA+'s WF(Next))."""
    index = {interp.init: 0}
    states = [interp.init]
    parent: list[tuple[int, str, tuple] | None] = [None]
    edges: list[list[Edge]] = []
    i = 0
    while i < len(states):
        out: list[Edge] = []
        for name, args, nxt in interp.successors(states[i]):
            j = index.get(nxt)
            if j is None:
                j = index[nxt] = len(states)
                states.append(nxt)
                parent.append((i, name, args))
                if len(states) > max_states:
                    return None
            out.append((name, args, j))
        if stutter == "always" or not out:
            out.append((STUTTER, (), i))
        edges.append(out)
        i += 1
        if on_progress is not None and i % 4096 == 0:
            on_progress(len(states))
    return StateGraph(states, edges, parent)


def fair_violation(interp: Interpreter, lv: ir.Liveness, graph: Any) -> tuple[list[Step], int, dict] | None:
    """A fair lasso violating some instance of ``lv`` (trace, loop start, binding), found by SCC
    analysis on a ``StateGraph`` or the fast engine's ``bfs.PackedGraph``."""
    edges = graph.edges
    fair = fair_instances(interp)
    for values in product(*[ir.domain(b.ty) for b in lv.binders]):  # type: ignore[arg-type]
        binding = {b.name: v for b, v in zip(lv.binders, values, strict=True)}
        triggered, avoid = graph.live_masks(interp, lv, binding)
        starts = [0] if lv.kind == "eventually" else range(graph.size)
        roots = [i for i in starts if avoid[i] and triggered[i]]
        region = _reach(roots, edges, avoid)
        scc = _fair_scc(set(region), edges, fair)
        if scc is not None:
            trace, loop_start = _lasso(graph.state, edges, roots, avoid, scc, fair)
            return trace, loop_start, binding
    return None


def fair_instances(interp: Interpreter) -> list[tuple[str, tuple, bool]]:
    """Every ground instance of every fair action: (action, args, strong)."""
    out = []
    for f in interp.machine.fairness:
        ca = interp.actions[f.action]
        out += [(f.action, args, f.strong) for args in product(*ca.param_domains)]
    return out


def _reach(roots: list[int] | range, edges: list[list[Edge]], allowed: list[bool]) -> list[int]:
    seen = set(roots)
    stack = list(roots)
    while stack:
        i = stack.pop()
        for _, _, j in edges[i]:
            if allowed[j] and j not in seen:
                seen.add(j)
                stack.append(j)
    return sorted(seen)


def _sccs(nodes: set[int], edges: list[list[Edge]]) -> list[set[int]]:
    """Tarjan's algorithm, iterative, on the subgraph induced by ``nodes``."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[set[int]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, pos = work.pop()
            if pos == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = [j for _, _, j in edges[v] if j in nodes]
            if pos < len(succ):
                work.append((v, pos + 1))
                w = succ[pos]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def _fair_scc(nodes: set[int], edges: list[list[Edge]], fair: list[tuple[str, tuple, bool]]) -> set[int] | None:
    strong = {(a, args) for a, args, is_strong in fair if is_strong}
    fair_keys = {(a, args) for a, args, _ in fair}
    for comp in _sccs(nodes, edges):
        taken = {(a, args) for n in comp for a, args, j in edges[n] if j in comp}
        if not taken:
            continue  # a single state without a self-loop is no cycle
        # An instance is enabled in a state exactly when the state has an edge labelled with it
        # (one per instance: a ground action is deterministic). Only fair instances matter, and
        # with stuttering most components are single states: keep this linear in their edges.
        enabled: dict[tuple[str, tuple], int] = {}
        unfair_states: set[int] = set()  # where a strong instance not taken on the component is enabled
        for n in comp:
            for b, bargs, _ in edges[n]:
                key = (b, bargs)
                if key in fair_keys:
                    enabled[key] = enabled.get(key, 0) + 1
                    if key in strong and key not in taken:
                        unfair_states.add(n)
        if unfair_states:
            # Emerson-Lei: a fair cycle here must avoid every state where such an action is enabled.
            found = _fair_scc(comp - unfair_states, edges, fair)
            if found is not None:
                return found
            continue
        if all(key in taken or count < len(comp) for key, count in enabled.items()):
            return comp
    return None


def _shortest_path(edges: list[list[Edge]], src: int, targets: set[int], allowed: set[int] | None) -> list[tuple[str, tuple, int]]:
    """Shortest edge path from ``src`` to a target (staying inside ``allowed``); [] when src is a target."""
    if src in targets:
        return []
    parent: dict[int, tuple[int, str, tuple]] = {src: (-1, "", ())}
    frontier = [src]
    while frontier:
        nxt = []
        for i in frontier:
            for a, args, j in edges[i]:
                if j in parent or (allowed is not None and j not in allowed):
                    continue
                parent[j] = (i, a, args)
                if j in targets:
                    out = []
                    while j != src:
                        p, a2, args2 = parent[j]
                        out.append((a2, args2, j))
                        j = p
                    return out[::-1]
                nxt.append(j)
        frontier = nxt
    raise AssertionError("target unreachable")


def _lasso(state: Callable[[int], State], edges: list[list[Edge]], roots: list[int] | range,
           avoid: list[bool], scc: set[int], fair: list[tuple[str, tuple, bool]]) -> tuple[list[Step], int]:
    region = {i for i, ok in enumerate(avoid) if ok}
    root = next(r for r in roots if _reach([r], edges, avoid) and scc & set(_reach([r], edges, avoid)))
    prefix = _shortest_path(edges, 0, {root}, None) + _shortest_path(edges, root, scc, region)
    entry = prefix[-1][2] if prefix else 0
    # The loop visits, for every fair action, a state where it is disabled or an edge taking it.
    loop: list[tuple[str, tuple, int]] = []
    cur = entry
    for a, args, strong in fair:
        takes = [(n, j) for n in scc for (b, bargs, j) in edges[n] if (b, bargs) == (a, args) and j in scc]
        disabled = [n for n in scc if all((b, bargs) != (a, args) for b, bargs, _ in edges[n])]
        if not strong and disabled:
            hop = _shortest_path(edges, cur, set(disabled), scc)
        elif takes:
            hop = _shortest_path(edges, cur, {takes[0][0]}, scc)
            n = hop[-1][2] if hop else cur
            hop.append((a, args, next(j for m, j in takes if m == n)))
        else:
            continue
        loop += hop
        cur = hop[-1][2] if hop else cur
    if not loop:  # no obligations: any cycle through the entry
        first = next(e for e in edges[entry] if e[2] in scc)
        loop.append(first)
        cur = first[2]
    loop += _shortest_path(edges, cur, {entry}, scc)
    trace = [Step(None, (), state(0))] + [Step(a, args, state(j)) for a, args, j in prefix + loop]
    return trace, len(prefix)

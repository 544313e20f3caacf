"""One entry point for checking a machine: picks engines, replays, certifies.

Safety (invariants and the built-in ``deadlock_free``): ``auto`` first tries to
prove the property: with the machine's own invariants as lemmas (Houdini), then
with Spacer; a proof is certified and reported as unbounded; a refutation is
handed to BMC for the *shortest* trace, which is replayed; if Spacer gives up,
k-induction is tried, then explicit search (reported as ``unknown`` when it
cannot finish).

Liveness: the state graph first when the fast engine translates the machine and the
graph fits in ``graph_states`` (fair SCCs: exact, and cheaper than a failed proof
attempt); then, for an expected violation, a run that ends in a deadlock with the
obligation pending (the first deadlock breadth-first, else depth-first); then
liveness-to-safety proofs on slices; otherwise the shortest fair lasso on
the whole machine, replayed; otherwise a whole-machine proof; otherwise ``unknown``
with the lasso length searched.

The state graph: when the reachable states fit in ``graph_states`` the graph is built
once per machine (by the fast engine, bfs.py, when the machine compiles to it) and
shared; past ``graph_states``, the states alone (no edges, ``WIDE_FACTOR`` times as many)
settle safety the same way. It settles a
property exactly (shortest safety traces in BFS order, fair cycles by SCC
analysis), which on protocol models with many interleavings is far cheaper than
deep BMC or lasso unrolling, and needs no Z3 encoding. It is searched first for a
property expected to be violated. On a machine with no expected violation (a design
to prove), a safety property is first proven from the machine's declared invariants
(Houdini, one re-checked certificate for all of them) when they imply it, at any
instance size; failing that, the graph
settles it once the graph exists, or on machines whose expanded actions are too
large for Spacer; otherwise a certified Spacer proof is tried first. ``expect``
only orders the engines: every verdict is still computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, is_dataclass
from functools import cached_property
from math import prod
from typing import Literal

import z3
from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.printer import show_expr
from racefree.spec.values import State

from . import bmc as bmc_mod
from . import liveness as live
from .bfs import PackedGraph, PackedMachine, Search, search
from .bmc import full_trace
from .certificate import CertificateRejected, implies_property, inductive_invariant, recheck, to_spec
from .dfs import DepthFirst, depth_first
from .diagnostics import Finding, Question, questions
from .encode import Encoding
from .explicit import StateGraph, explore, state_graph
from .fair import bindings, fair_instances, fair_violation
from .houdini import houdini
from .interrupts import stop_if_interrupted
from .limits import Limits, WallClockTimeout
from .prove import k_induction, spacer_prove
from .replay import ReplayMismatch, replay, replay_steps
from .result import STUTTER, Result, Step, Stutter
from .symmetry import Symmetry, SymmetryTooLarge, symmetric_types
from .vector import Unsupported

EngineName = Literal["auto", "prove", "bmc", "explicit"]
SymmetryMode = Literal["on", "off", "count"]
SYMBOLIC_FIRST_MAX_NODES = 5_000  # above this many IR nodes in its actions, a machine is searched explicitly first
# Diagnostics enumerate up to this many states (or orbits) when no property built the graph:
# about a second; past it, a symbolic query per question is usually the cheaper answer.
DIAGNOSTIC_STATES = 100_000
SHALLOW_DEPTH = 10  # an expected violation is first looked for this deep by BMC, before any state graph
# Past the state graph's size, safety is settled from the states alone (no edges, no reverse
# index, no liveness masks: a few times cheaper per state), this many times further.
WIDE_FACTOR = 8
Progress = Callable[[str], None]


@dataclass
class Options:
    """Every budget that decides which engine answers is counted in work (Z3 resource units,
    states, depth), never in seconds: the same options give the same methods everywhere."""

    engine: EngineName = "auto"
    depth: int = 30  # BMC / lasso / k-induction bound
    timeout: float = 300.0  # wall-clock safety net per solver call, seconds (expiry: unknown)
    rlimit: int = 100_000_000  # Z3 resource units per solver call (a full attempt; about a minute)
    first_rlimit: int = 3_000_000  # Spacer's first, quick attempt; BMC and the state graph run before a full one
    max_states: int = 5_000_000
    # Liveness: where a run may stutter forever. "always": only fairness obliges an action (the
    # usual semantics); "deadlock" (--fair-next): only where nothing is enabled (TLA+'s WF(Next)).
    stutter: Stutter = "always"
    graph_states: int = 600_000  # the shared state graph is built only for instances up to this size
    dfs_states: int = 200_000  # depth-first search for deep bugs in instances larger than that
    max_ground: int = 200_000  # ground action instances (parameter combinations) an instance may have
    # Safety searches keep one state per orbit of the symmetric types ("on"); "count" also
    # reports how many states those orbits hold; "off" enumerates every state.
    symmetry: SymmetryMode = "on"
    progress: Progress = field(default=lambda msg: None)

    @property
    def limits(self) -> Limits:
        return Limits(self.rlimit, max(1, int(self.timeout * 1000)))

    @property
    def quick(self) -> Limits:
        return self.limits.scaled(min(self.rlimit, self.first_rlimit))


@dataclass
class Safety:
    """A safety property: the interpreter's predicate, and its formula over the base frame
    (built on first use: the explicit engine never needs the Z3 encoding)."""

    name: str
    holds: Callable[[State], bool]
    build: Callable[[], z3.BoolRef]
    _formula: z3.BoolRef | None = None

    @property
    def formula(self) -> z3.BoolRef:
        if self._formula is None:
            self._formula = self.build()
        return self._formula


class MachineChecker:
    """Checks every property of one machine, sharing its encoding and interpreter."""

    def __init__(self, m: ir.Machine, options: Options) -> None:
        self.m = m
        self.opt = options
        self.interp = Interpreter(m)
        self._enc: Encoding | None = None
        self._graph: StateGraph | PackedGraph | None | bool = False  # False: not tried yet; None: too large
        self._packed: PackedMachine | None | bool = False  # False: not built yet; None: not supported
        self._reduced: Search | None | bool = False  # False: not searched yet; None: too large
        self._reduced_early: Search | None = None  # stopped once the expected violations were found
        self._deadlocked: Search | None | bool = False  # stopped at the first deadlock (False: not searched)
        self._wide: Search | None | bool = False  # the states past the graph's size, no edges (False: not searched)
        self._dfs_deadlock: DepthFirst | None = None  # the depth-first search for a deadlock (None: not searched)
        self._symmetry_unused = ""  # why declared symmetric types are not used, if they are not
        self._lemmas: list[str] | None = None  # Houdini's survivors among the declared invariants
        self._lemma_text = ""  # their conjunction, the certificate of every property they prove
        self._lemma_cert: z3.BoolRef | None = None  # ... encoded, once it re-checked as inductive
        self._stage = "proof"  # the engine running now

    @property
    def enc(self) -> Encoding:
        if self._enc is None:
            self._enc = Encoding(self.m)
        return self._enc

    def safety_props(self) -> list[str]:
        return [i.name for i in self.m.invariants] + [ir.DEADLOCK_FREE] + ([ir.IN_BOUNDS] if self.m.strict_bounds else [])

    def check_all(self) -> list[Result]:
        return list(self.results())

    def results(self, props: list[str] | None = None) -> Iterator[Result]:
        """Each property's result as soon as it is known (all of them, or ``props`` in the machine's order)."""
        wanted = [p for p in self.m.property_names if props is None or p in props]
        if self.opt.engine == "explicit" and not self._too_large():
            safety = [p for p in wanted if p in self.safety_props()]
            yield from self._explicit(safety) if safety else []
            wanted = [p for p in wanted if p not in safety]
        for name in wanted:
            yield self.check(name)

    def check(self, prop: str) -> Result:
        start = time.perf_counter()
        try:
            res = self._check(prop)
        except WallClockTimeout as exc:
            res = Result(self.m, prop, "unknown", self._stage, None, kind=self._kind(prop),
                         detail=f"{exc} ({self._stage}); raise --timeout or lower the instance")
        res.seconds = time.perf_counter() - start
        return res

    def _kind(self, prop: str) -> str:
        return "liveness" if any(lv.name == prop for lv in self.m.liveness) else "invariant"

    def _stage_is(self, method: str, message: str) -> None:
        """Record which engine is running (named in a wall-clock timeout) and report progress."""
        stop_if_interrupted()
        self._stage = method
        self.opt.progress(message)

    def _too_large(self) -> str | None:
        """Why no engine should start on this instance: it would take gigabytes before any answer."""
        if self.ground_actions <= self.opt.max_ground:
            return None
        return (f"{self.ground_actions:,} ground action instances (parameter combinations) exceed the limit of "
                f"{self.opt.max_ground:,}: check a smaller instance (--const)")

    def _check(self, prop: str) -> Result:
        too_large = self._too_large()
        if too_large:
            return Result(self.m, prop, "unknown", "explicit", None, kind=self._kind(prop), detail=too_large)
        if any(lv.name == prop for lv in self.m.liveness):
            res = self._liveness(self.m.live(prop))
        elif self.opt.engine == "explicit":
            return self._explicit([prop])[0]
        elif self.opt.engine == "bmc":
            res = self._bmc(self._safety(prop))
        else:
            p = self._safety(prop)
            res = None
            if self.m.expected(prop) == "violated" and self._graph is False and not self.graph_first \
                    and self.packed is None:
                # Through the interpreter, a shallow bug costs less than a state graph that may be too large.
                res = self._shallow_bmc(p)
            if res is None and self.expects_no_bug:
                # A design expected to hold everywhere is proven from its own invariants when they
                # suffice (an unbounded proof, and cheaper than a state graph), whatever the
                # instance's size. A machine with expected bugs builds the graph for their traces
                # anyway, and the graph then settles the rest exactly.
                res = self._lemma_proof(p)
            if res is None and (self.graph_first or self.m.expected(prop) == "violated" or self._graph or self._reduced
                                or (self._graph is None and self._wide is not None)):
                # exact on small instances (shortest trace, or every state seen); past the graph's
                # size, from the states without edges
                res = self._graph_search(p)
            if res is None and self.m.expected(prop) == "violated" and self._searched_depth() >= 0:
                # Past the states without edges, which cover most of BMC's depths (and Z3 is slow on an
                # instance that large), an expected bug is looked for depth-first, as liveness's
                # deadlocks are; BMC then searches only the depths they did not cover.
                res = self._depth_first(p)
            res = res or (None if self.expects_no_bug else self._lemma_proof(p)) or self._prove(p)  # tried above
        return res

    @cached_property
    def ground_actions(self) -> int:
        """How many instances the actions have, one per combination of parameter values."""
        return sum(prod(len(ir.domain(p.ty)) for p in a.params) for a in self.m.actions)  # type: ignore[arg-type]

    @cached_property
    def expects_no_bug(self) -> bool:
        """No property of the machine is expected to be violated (a design to prove)."""
        return all(self.m.expected(p) != "violated" for p in self.m.property_names)

    @cached_property
    def graph_first(self) -> bool:
        """Machines whose actions are large once their defs are expanded (a planner contract,
        say) are slow for Spacer and cheap to enumerate: search their state graph first."""
        return _size(self.m.actions) > SYMBOLIC_FIRST_MAX_NODES

    @property
    def packed(self) -> PackedMachine | None:
        """The machine compiled for the fast explicit engine (bfs.py), or None when it uses a
        construct that engine does not translate (then the interpreter enumerates states)."""
        if self._packed is False:
            try:
                self._packed = PackedMachine(self.m, self.interp)
            except Unsupported:
                self._packed = None
        return self._packed  # type: ignore[return-value]

    @cached_property
    def symmetry(self) -> Symmetry | None:
        """How the fast engine reduces safety searches by the machine's symmetric types, or None."""
        if self.opt.symmetry == "off" or not symmetric_types(self.m) or self.packed is None:
            return None
        try:
            return Symmetry(self.packed.layout, self.packed.fingerprints)
        except SymmetryTooLarge as exc:
            self._symmetry_unused = f"; symmetry not used: {exc}"
            return None

    def reduced(self, until: str | None = None) -> Search | None:
        """Every orbit of the reachable states (safety: the symmetric counterpart of ``graph``),
        searched once, or None when there are more than ``graph_states`` of them. ``until``: a
        property expected to be violated; then a search that stops once every property expected
        to be violated has failed will do (it is searched once too)."""
        assert self.packed is not None and self.symmetry is not None

        def progress(_: int, n: int) -> None:
            self._stage_is("explicit", f"{self.m.name}: enumerating states up to symmetry, {n:,} orbits")

        if until is not None and self._reduced is False:
            if self._reduced_early is None:
                bugs = [q for q in self.safety_props() if self.m.expected(q) == "violated"]
                self._reduced_early = search(self.packed, self.opt.graph_states, props=bugs, symmetry=self.symmetry,
                                             on_progress=progress)
            if until in self._reduced_early.first_bad:
                return self._reduced_early
        if self._reduced is False:
            found = search(self.packed, self.opt.graph_states, symmetry=self.symmetry, on_progress=progress)
            self._reduced = found if found.complete else None
        return self._reduced  # type: ignore[return-value]

    def graph(self) -> StateGraph | PackedGraph | None:
        """The machine's whole state graph, built once, or None when it has more than ``graph_states`` states."""
        if self._graph is False:
            self._stage_is("explicit", f"{self.m.name}: enumerating the state graph")
            limit = self.opt.max_states if self.opt.engine == "explicit" else self.opt.graph_states
            pm = self.packed
            if pm is not None:
                found = search(pm, limit, edges=True, on_progress=lambda _, n: self._stage_is(
                    "explicit", f"{self.m.name}: enumerating the state graph, {n:,} states"))
                self._graph = PackedGraph(found, self.opt.stutter) if found.complete else None
            else:
                self._graph = state_graph(self.interp, limit, self.opt.stutter, on_progress=lambda n: self._stage_is(
                    "explicit", f"{self.m.name}: enumerating the state graph, {n:,} states"))
        return self._graph  # type: ignore[return-value]

    @property
    def _wide_limit(self) -> int:
        return min(self.opt.max_states, WIDE_FACTOR * self.opt.graph_states)

    def wide(self) -> Search | None:
        """Past ``graph_states``: the reachable states without the graph's edges, up to
        ``WIDE_FACTOR`` times as many (at most ``max_states``; one state per orbit when the machine
        has symmetric types), searched once; None when the fast engine does not translate the
        machine. Safety needs no edges, so an instance too large for liveness's graph is still
        settled exactly for safety (or its shortest counterexamples found) when it fits here."""
        if self._wide is False:
            self._wide = None
            if self.packed is not None and self._wide_limit > self.opt.graph_states:
                self._wide = search(self.packed, self._wide_limit, symmetry=self.symmetry,
                                    on_progress=lambda _, n: self._stage_is(
                                        "explicit", f"{self.m.name}: enumerating states without the graph, {n:,}"))
        return self._wide  # type: ignore[return-value]

    def _searched_depth(self) -> int:
        """How deep the search without edges saw every state (-1: it did not run), so that no
        counterexample of at most that many steps exists for a property it did not find failing."""
        found = self._wide
        if not isinstance(found, Search):
            return -1
        # it stops while adding the next layer: every state of the layers before the last is in it
        return int(found.depth[-1]) - (0 if found.complete else 1)

    def _wide_search(self, p: Safety) -> Result | None:
        found = self.wide()
        if found is None:
            return None
        i = found.first_bad.get(p.name)
        if i is not None:
            trace = found.path(i)
            replay(self.interp, p.name, p.holds, trace)
            return Result(self.m, p.name, "violated", "explicit", len(trace) - 1, trace=trace, replayed=True,
                          states=found.size, detail="shortest counterexample (breadth-first, too many states "
                                                    "for the graph); replayed through the interpreter")
        if not found.complete:
            return None
        return Result(self.m, p.name, "holds", "explicit", None, states=found.size,
                      detail="every reachable state of this instance enumerated" + self._search_note(found))

    def _graph_search(self, p: Safety) -> Result | None:
        if self.symmetry is not None and not self.m.liveness and self._graph is False:
            return self._orbit_search(p)  # no state graph is needed: one state per orbit will do
        graph = self.graph()
        if graph is None:
            return self._wide_search(p)
        trace = graph.first_violation(p.holds, p.name)
        n = graph.size
        if trace is None:
            return Result(self.m, p.name, "holds", "explicit", None, states=n,
                          detail="every reachable state of this instance enumerated"
                          + (self._search_note(graph.found) if isinstance(graph, PackedGraph) else ""))
        replay(self.interp, p.name, p.holds, trace)
        return Result(self.m, p.name, "violated", "explicit", len(trace) - 1, trace=trace, replayed=True,
                      states=n, detail="shortest counterexample (breadth-first); replayed through the interpreter")

    def _orbit_search(self, p: Safety) -> Result | None:
        found = self.reduced(p.name if self.m.expected(p.name) == "violated" else None)
        if found is None:
            return None
        i = found.first_bad.get(p.name)
        if i is None:
            return Result(self.m, p.name, "holds", "explicit", None, states=found.size,
                          detail="every reachable state of this instance enumerated" + self._search_note(found))
        trace = found.path(i)
        replay(self.interp, p.name, p.holds, trace)
        return Result(self.m, p.name, "violated", "explicit", len(trace) - 1, trace=trace, replayed=True,
                      states=found.size, detail="shortest counterexample (breadth-first, up to symmetry); "
                                                "replayed through the interpreter")

    def _search_note(self, found: Search) -> str:
        """What a "holds" from the fast engine rests on: the orbits it stood for, hashed states."""
        note = _fingerprints(found) + self._symmetry_unused
        if found.symmetry is None:
            return note
        note = f" up to symmetry of {', '.join(found.symmetry.names)} ({found.size:,} orbits" + (
            f" of {found.states_held:,} states)" if self.opt.symmetry == "count"
            else ")") + note
        return note

    def diagnostics(self) -> list[Finding]:
        """Never-enabled actions, bound-blocked actions and vacuous premises (diagnostics.py): exact
        from the reachable states when there are at most ``graph_states`` of them, else from cheap
        symbolic queries."""
        if self._too_large():
            return []
        graph = self._graph if isinstance(self._graph, StateGraph | PackedGraph) else None
        if graph is None and self.packed is not None and not isinstance(self._wide, Search):
            # No property needed the graph (proofs settled them): the reachable states without edges
            # answer every question, and cost far less than a symbolic query each. Every question is
            # symmetric, so one state per orbit will do.
            self._stage_is("explicit", f"{self.m.name}: diagnostics, enumerating states")
            found = self._reduced if isinstance(self._reduced, Search) else search(
                self.packed, DIAGNOSTIC_STATES, symmetry=self.symmetry)
            if found.complete:
                graph = PackedGraph(found, self.opt.stutter)
        # Past the graph, the states the search without edges saw answer every question whose answer
        # is "reachable"; only the others need a symbolic query.
        seen = graph if graph is not None else PackedGraph(self._wide, self.opt.stutter) \
            if isinstance(self._wide, Search) else None
        taken = seen.taken_actions() if seen is not None else set()
        out = []
        for q in questions(self.interp):
            if seen is not None and q.kind == "never_enabled" and (graph is not None or q.subject in taken):
                if q.subject not in taken:  # enabled somewhere = an edge takes it
                    out.append(q.finding(self.m, self.interp, None))
                continue
            self._stage_is("proof", f"{self.m.name}: diagnostics ({q.kind} {q.subject})")
            try:
                answer = self._reach_in_graph(seen, q) if seen is not None and q.kind != "never_enabled" else None
                if answer is None or (graph is None and not answer[0]):  # not among the states seen: unsettled
                    answer = self._reach_symbolic(q)
            except WallClockTimeout:
                answer = None
            if answer is not None and answer[0] == q.finding_if_reachable:
                out.append(q.finding(self.m, self.interp, answer[1]))
        return out

    @staticmethod
    def _reach_in_graph(graph: StateGraph | PackedGraph, q: Question) -> tuple[bool, list[Step] | None]:
        first = graph.first_state(q)
        return (False, None) if first is None else (True, graph.path(first))

    def _reach_symbolic(self, q: Question) -> tuple[bool, list[Step] | None] | None:
        """Whether a state satisfying ``q`` is reachable: a shallow BMC trace to one (replayed), or a
        quick Spacer proof that none is (its certificate re-checked), or a deeper BMC trace when Spacer
        says there is one; None when none of these settles it within the quick budget."""
        never = z3.Not(q.formula(self.enc))
        trace, _, _ = bmc_mod.bmc(self.enc, never, min(self.opt.depth, SHALLOW_DEPTH), self.opt.quick)
        if trace is None:
            attempt = spacer_prove(self.enc, never, self.opt.quick)
            if attempt.verdict == "holds" and attempt.invariant is not None:
                try:
                    recheck(self.enc, to_spec(attempt.invariant, self.enc), never, self.opt.limits)
                except CertificateRejected:
                    return None
                return False, None
            if attempt.verdict != "violated":
                return None
            if not q.finding_if_reachable:
                return True, None  # reachable, so no finding: no example needed
            trace, _, _ = bmc_mod.bmc(self.enc, never, self.opt.depth * 4, self.opt.quick)
            if trace is None:
                return None
        replay(self.interp, q.subject, lambda st: not q.here(st), trace)
        return True, trace

    def _lemma_proof(self, p: Safety) -> Result | None:
        """A proof by the machine's own invariants: the largest inductive subset (Houdini), re-checked
        once as a certificate, then shown to imply each property."""
        if self._lemmas is None:
            self._stage_is("proof", f"{self.m.name}: Houdini over the declared invariants")
            cands = {i.name: self.enc.invariant(i.expr, self.enc.base) for i in self.m.invariants}
            self._lemmas = houdini(self.enc, cands, self.opt.limits).inductive
            if self._lemmas:
                self._lemma_text = " and ".join(f"({show_expr(self.m.invariant(n).expr)})" for n in self._lemmas)
                try:
                    self._lemma_cert = inductive_invariant(self.enc, self._lemma_text, self.opt.limits)
                except CertificateRejected:
                    self._lemmas = []
        lemmas = self._lemmas
        if not lemmas or (p.name not in (ir.DEADLOCK_FREE, ir.IN_BOUNDS) and p.name not in lemmas):
            return None
        assert self._lemma_cert is not None
        try:
            implies_property(self.enc, self._lemma_cert, p.formula, self.opt.limits)
        except CertificateRejected:
            return None
        others = len(lemmas) - (p.name in lemmas)
        return Result(self.m, p.name, "holds", "proof", None, certificate=self._lemma_text,
                      detail=f"inductive together with {others} other declared invariant(s) (Houdini); re-checked")

    def _safety(self, prop: str) -> Safety:
        if prop == ir.DEADLOCK_FREE:
            return Safety(prop, self.interp.deadlock_free, lambda: self.enc.deadlock_free(self.enc.base))
        if prop == ir.IN_BOUNDS:
            return Safety(prop, self.interp.in_bounds, lambda: self.enc.in_bounds(self.enc.base))
        return Safety(prop, self.interp.invariants[prop],
                      lambda: self.enc.invariant(self.m.invariant(prop).expr, self.enc.base))

    # ------------------------------------------------------------- safety
    def _prove(self, p: Safety, first_try: bool = True) -> Result:
        self._stage_is("proof", f"{self.m.name}.{p.name}: Spacer")
        budget = self.opt.quick if first_try else self.opt.limits
        attempt = spacer_prove(self.enc, p.formula, budget)
        rejected = ""
        if attempt.verdict == "holds":
            assert attempt.invariant is not None
            self.opt.progress(f"{self.m.name}.{p.name}: re-checking certificate")
            try:
                text = to_spec(attempt.invariant, self.enc)
                recheck(self.enc, text, p.formula, self.opt.limits)
            except CertificateRejected as exc:
                # Never report an unchecked proof: fall back to the other engines.
                rejected = f"Spacer's invariant was rejected ({exc}); "
            else:
                detail = f"{attempt.slices} conjunct(s), {attempt.solved} distinct slice(s) solved by Spacer"
                return Result(self.m, p.name, "holds", "proof", None, certificate=text, detail=detail)
        if attempt.verdict == "violated":
            return self._bmc(p, until_found=True)
        if first_try and not rejected:
            # Spacer gave up quickly: a small instance is settled by its state graph; else a shallow
            # bug is cheaper to find by BMC, then retry with the full budget.
            exhaustive = self._graph_search(p)
            if exhaustive is not None:
                return exhaustive
            shallow = self._bmc(p)
            if shallow.verdict == "violated":
                return shallow
            deep = self._depth_first(p)
            if deep is not None:
                return deep
            if budget.rlimit < self.opt.rlimit:
                return self._prove(p, first_try=False)
        self._stage_is("k-induction", f"{self.m.name}.{p.name}: k-induction")
        k, verdict = k_induction(self.enc, p.formula, max_k=min(self.opt.depth, 10), limits=self.opt.limits)
        if k is not None:
            return Result(self.m, p.name, "holds", "k-induction", None, detail=rejected.rstrip("; "),
                          certificate=f"{p.name} is {k}-inductive (base case and step re-checked at k={k})")
        if verdict == "violated":
            return self._bmc(p, until_found=True)
        res = self._explicit([p.name])[0]
        res.detail = rejected + res.detail
        return res

    def _shallow_bmc(self, p: Safety) -> Result | None:
        """The shortest counterexample if it is at most ``SHALLOW_DEPTH`` deep and BMC finds it within
        the quick work budget; None otherwise (nothing is concluded from not finding one)."""
        found = self._bmc(p, depth=min(self.opt.depth, SHALLOW_DEPTH), limits=self.opt.quick)
        return found if found.verdict == "violated" else None

    def _bmc(self, p: Safety, until_found: bool = False, depth: int | None = None,
             limits: Limits | None = None) -> Result:
        depth = depth if depth is not None else self.opt.depth * (4 if until_found else 1)

        def progress(d: int) -> None:
            self._stage_is("bmc", f"{self.m.name}.{p.name}: BMC depth {d}")

        trace, reached, spent = bmc_mod.bmc(self.enc, p.formula, depth, limits or self.opt.limits, on_depth=progress,
                                            first_depth=self._searched_depth() + 1)
        if trace is None:
            why = ("the solver's work budget ran out (raise --rlimit)" if spent else
                   f"no counterexample up to depth {reached} (raise --depth)")
            return Result(self.m, p.name, "unknown", "bmc", reached, detail=why)
        replay(self.interp, p.name, p.holds, trace)
        return Result(self.m, p.name, "violated", "bmc", len(trace) - 1, trace=trace, replayed=True,
                      detail="shortest counterexample; replayed through the interpreter")

    def _depth_first(self, p: Safety) -> Result | None:
        """A deep bug beyond the BMC depth, in an instance too large for the state graph (dfs.py)."""
        found = self._deep_deadlock() if p.name == ir.DEADLOCK_FREE else self._dfs(p.holds, f"{self.m.name}.{p.name}")
        if found.trace is not None:
            replay(self.interp, p.name, p.holds, found.trace)
            return Result(self.m, p.name, "violated", "dfs", len(found.trace) - 1, trace=found.trace, replayed=True,
                          states=found.states, detail="found by depth-first search, not necessarily shortest; "
                                                      "replayed through the interpreter")
        if found.complete:
            return Result(self.m, p.name, "holds", "explicit", None, states=found.states,
                          detail="every reachable state of this instance enumerated (depth-first)")
        return None

    def _explicit(self, props: list[str]) -> list[Result]:
        """Breadth-first search until every property has failed or every state is seen (the fast
        engine, or the interpreter for a machine it does not translate)."""
        start = time.perf_counter()

        def progress(depth: int, states: int) -> None:
            self._stage_is("explicit", f"{self.m.name}: explicit depth {depth}, {states:,} states")

        preds = {p: self._safety(p).holds for p in props}
        pm = self.packed
        note = ""
        if pm is not None:
            found = search(pm, self.opt.max_states, props=props, on_progress=progress, symmetry=self.symmetry)
            states, complete, depth = found.size, found.complete, int(found.depth[-1])
            note = self._search_note(found)
            violations = {p: found.path(i) for p, i in found.first_bad.items() if p in preds}
        else:
            ex = explore(self.interp, preds, max_states=self.opt.max_states, on_progress=progress)
            states, complete, depth, violations = ex.states, ex.complete, ex.depth, ex.violations
        seconds = time.perf_counter() - start
        out = []
        for prop in props:
            trace = violations.get(prop)
            if trace is not None:
                replay(self.interp, prop, preds[prop], trace)
                out.append(Result(self.m, prop, "violated", "explicit", len(trace) - 1, seconds, trace,
                                  replayed=True, states=states, detail="shortest (breadth-first)"))
            elif complete:
                out.append(Result(self.m, prop, "holds", "explicit", None, seconds, states=states,
                                  detail="every reachable state of this instance enumerated" + note))
            else:
                out.append(Result(self.m, prop, "unknown", "explicit", depth, seconds, states=states,
                                  detail=f"stopped at {states:,} states (raise --max-states)"))
        return out

    # ----------------------------------------------------------- liveness
    def _liveness(self, lv: ir.Liveness) -> Result:
        if self.opt.engine == "explicit":
            return self._liveness_explicit(lv)
        proving = self.opt.engine in ("auto", "prove")
        if proving and (self.graph_first or self.m.expected(lv.name) == "violated" or self._graph
                        or self.packed is not None):
            # The fast engine enumerates up to graph_states in a second or two, less than a failed
            # liveness-to-safety attempt costs, and exactly; liveness-to-safety is for the
            # instances past that (and for machines the fast engine does not translate).
            found = self._liveness_explicit(lv)
            if found.verdict != "unknown":
                return found
            if self.m.expected(lv.name) == "violated":
                stuck = self._deadlock_lasso(lv)
                if stuck is not None:
                    return stuck
        insts = live.instances(self.enc, lv)
        if proving:
            self._stage_is("proof", f"{self.m.name}.{lv.name}: liveness-to-safety on slices")
            proof = live.prove(self.enc, insts, self.opt.quick, stutter=self.opt.stutter)
            if proof.holds:
                return self._live_proof(lv, len(insts), proof.solved, "on cone-of-influence slices")
            found = self._liveness_explicit(lv)
            if found.verdict != "unknown":
                return found
            stuck = self._deadlock_lasso(lv)
            if stuck is not None:
                return stuck
            # A proven instance has no lasso; instances whose slices are equal up to renaming
            # (symmetric slots, writers ...) have the same shortest lasso: search one of each.
            insts = proof.representatives
        found, searched, spent = live.shortest_lasso(
            self.enc, insts, self.opt.depth, self.opt.limits, self.opt.stutter,
            on_depth=lambda n: self._stage_is("lasso", f"{self.m.name}.{lv.name}: lasso length {n}"))
        if found is not None:
            return self._live_violation(lv, *found)
        if proving:
            self._stage_is("proof", f"{self.m.name}.{lv.name}: liveness-to-safety on the whole machine")
            whole = live.prove(self.enc, insts, self.opt.limits, sliced=False, stutter=self.opt.stutter)
            if whole.holds:
                return self._live_proof(lv, len(insts), whole.solved, "on the whole machine")
        why = ("the solver's work budget ran out (raise --rlimit)" if spent else
               f"no fair lasso with up to {searched} steps (raise --depth)")
        return Result(self.m, lv.name, "unknown", "lasso", searched, kind="liveness", detail=why)

    def _deadlock_lasso(self, lv: ir.Liveness) -> Result | None:
        """A violation of ``lv`` that ends in a deadlock, on an instance too large for the state
        graph. A run that reaches a state where nothing is enabled stops there for good, and that
        run is fair (no action is ever enabled again), so if the property's obligation is still
        pending there, the path to it plus a stutter loop is a fair lasso. The fast engine's
        search for the first deadlock (breadth-first, stopping there, up to ``max_states``)
        needs no edges; that first deadlock is tried, and its lasso is replayed. When that search
        cannot finish, a depth-first one looks further (``_deep_deadlock_lasso``)."""
        found = self._first_deadlock()
        i = found.first_bad.get(ir.DEADLOCK_FREE) if found is not None else None
        if found is not None and i is not None:
            return self._stuck_lasso(lv, found.path(i), found.size, "breadth-first search for the first deadlock")
        if found is not None and found.complete:
            return None  # no reachable deadlock at all
        return self._deep_deadlock_lasso(lv)

    def _stuck_lasso(self, lv: ir.Liveness, path: list[Step], states: int, how: str) -> Result | None:
        """``path`` ends in a deadlock: with a stutter loop there, a violation of ``lv`` if some
        instance's obligation is still pending at its end (replayed)."""
        trace = path + [Step(STUTTER, (), path[-1].state)]
        for binding in bindings(lv):
            try:
                replay_lasso(self.interp, lv, binding, trace, len(path) - 1, self.opt.stutter)
            except ReplayMismatch:
                continue  # this instance's obligation is met on the way to the deadlock
            return Result(self.m, lv.name, "violated", "lasso", len(trace) - 1, trace=trace,
                          loop_start=len(path) - 1, kind="liveness", replayed=True, states=states,
                          detail=f"the run stops in a deadlock with the obligation pending ({how}, too many "
                                 "states for the graph); replayed")
        return None

    def _deep_deadlock_lasso(self, lv: ir.Liveness) -> Result | None:
        """A deadlock too deep for the breadth-first search, found depth-first (dfs.py) as SPIN finds
        such runs: a lasso if some instance's obligation is pending there (the replay decides; only
        that first deadlock is tried)."""
        found = self._deep_deadlock()
        if found.trace is None:
            return None
        return self._stuck_lasso(lv, found.trace, found.states, "depth-first search, not necessarily shortest")

    def _deep_deadlock(self) -> DepthFirst:
        """The depth-first search for a deadlock, searched once: deadlock_free's deep bug, and the run
        every liveness property's deadlock lasso is tried on."""
        if self._dfs_deadlock is None:
            self._dfs_deadlock = self._dfs(self.interp.deadlock_free, f"{self.m.name}.{ir.DEADLOCK_FREE}")
        return self._dfs_deadlock

    def _dfs(self, holds: Callable[[State], bool], what: str) -> DepthFirst:
        self._stage_is("dfs", f"{what}: depth-first search ({self.opt.dfs_states:,} states)")
        return depth_first(self.interp, holds, self.opt.dfs_states, on_progress=lambda n: self._stage_is(
            "dfs", f"{what}: depth-first search, {n:,} states"))

    def _first_deadlock(self) -> Search | None:
        """The breadth-first search for the first deadlock (shared by the liveness properties): the
        search without edges (``wide``, shared with safety), or, where that does not run, one
        stopped at the first deadlock, with the same limit, so either finds the same one."""
        if self._deadlocked is False:
            self._deadlocked = self.wide() if self.symmetry is None else None
        if self._deadlocked is None and self.packed is not None:
            self._stage_is("explicit", f"{self.m.name}: looking for a deadlock without the state graph")
            self._deadlocked = search(self.packed, self._wide_limit, props=[ir.DEADLOCK_FREE],
                                      on_progress=lambda _, n: self._stage_is(
                                          "explicit", f"{self.m.name}: looking for a deadlock, {n:,} states"))
        return self._deadlocked  # type: ignore[return-value]

    def _live_proof(self, lv: ir.Liveness, instances: int, solved: int, how: str) -> Result:
        cert = (f"liveness-to-safety {how}: no fair cycle avoids the goal; {instances} instance(s), "
                f"{solved} distinct problem(s) solved by Spacer, each inductive invariant re-checked")
        return Result(self.m, lv.name, "holds", "proof", None, kind="liveness", certificate=cert,
                      detail="for every fair execution of this instance")

    def _live_violation(self, lv: ir.Liveness, inst: live.LiveInstance, lasso: live.Lasso) -> Result:
        trace, _, _ = full_trace(self.enc, lasso.picks)
        replay_lasso(self.interp, lv, inst.binding, trace, lasso.loop_start, self.opt.stutter)
        return Result(self.m, lv.name, "violated", "lasso", len(trace) - 1, trace=trace,
                      loop_start=lasso.loop_start, kind="liveness", replayed=True,
                      detail=f"{inst.label}: shortest fair lasso; replayed (prefix, then the loop twice)")

    def _liveness_explicit(self, lv: ir.Liveness) -> Result:
        graph = self.graph()
        if graph is None:
            return Result(self.m, lv.name, "unknown", "explicit", None, kind="liveness",
                          detail="too many states for the explicit engine")
        n = graph.size
        self.opt.progress(f"{self.m.name}.{lv.name}: fair cycles in {n:,} states")
        found = fair_violation(self.interp, lv, graph)
        if found is None:
            return Result(self.m, lv.name, "holds", "explicit", None, kind="liveness", states=n,
                          detail="no fair cycle avoids the goal in the reachable state graph")
        trace, loop_start, binding = found
        replay_lasso(self.interp, lv, binding, trace, loop_start, self.opt.stutter)
        return Result(self.m, lv.name, "violated", "lasso", len(trace) - 1, trace=trace, loop_start=loop_start,
                      kind="liveness", replayed=True, states=n, detail="fair cycle found by SCC analysis; replayed")


def _fingerprints(found: Search) -> str:
    """What a "holds" from the fast engine rests on when its states were hashed: the chance that
    two states shared a 64-bit fingerprint (so one was never explored)."""
    if found.pm.exact:
        return ""
    return f" (64-bit fingerprints: collision probability <= {found.collision_probability:.0e})"


def _size(node: object, memo: dict[int, int] | None = None) -> int:
    """The number of IR nodes under ``node`` (a subtree shared by expanded ``def``s counts at
    every use; it is walked once)."""
    memo = {} if memo is None else memo
    known = memo.get(id(node))
    if known is None:
        own = 1 if not isinstance(node, tuple) and is_dataclass(node) else 0
        known = memo[id(node)] = own + sum(_size(c, memo) for c in ir.children(node))
    return known


def replay_lasso(interp: Interpreter, lv: ir.Liveness, binding: dict, trace: list[Step], loop_start: int,
                 stutter: Stutter = "always") -> None:
    """A lasso is reported only if the interpreter confirms every step, the loop closes (twice),
    the goal never holds from the trigger on, and every fairness obligation is met on the loop."""
    last = replay_steps(interp, trace, stutter)
    if last != trace[loop_start].state:
        raise ReplayMismatch(f"the last state is not the loop start (step {loop_start})")
    state = last
    for st in trace[loop_start + 1:]:  # the loop, a second time
        state = state if st.action == STUTTER else interp.step(state, st.action, st.args)  # type: ignore[arg-type]
        if state != st.state:
            raise ReplayMismatch("the loop does not repeat")
    trigger, goal = interp.live_preds(lv, binding)
    states = [st.state for st in trace[:-1]]
    ok_from = [all(not goal(s) for s in states[j:]) for j in range(len(states))]
    starts = range(1) if lv.kind == "eventually" else range(len(states))
    if not any(trigger(states[i]) and ok_from[min(i, loop_start)] for i in starts):
        raise ReplayMismatch("the goal holds somewhere after every trigger")
    loop_states = states[loop_start:]
    loop_steps = {(st.action, st.args) for st in trace[loop_start + 1:]}
    for name, args, strong in fair_instances(interp):
        enabled = [interp.step(s, name, args) is not None for s in loop_states]
        if (any(enabled) if strong else all(enabled)) and (name, args) not in loop_steps:
            raise ReplayMismatch(f"the loop is not fair to {name}{args}")

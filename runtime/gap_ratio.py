"""The gap-ratio planner of rlix (gpu_alloc brief, section 3), as a pure function.

The gpu_alloc spec states only the planner's contract (K1-K6: resources, visibility,
roles, keep, floor, priority); this module is the arithmetic the runtime runs, and
tests/test_gap_ratio.py checks it against that contract with Hypothesis and against
the brief's worked examples. ``floor=True`` adds the fenced design's floor pass (F3):
without it, skewed weights break K5, exactly as the brief reports.

Pure Python, no Ray: the scheduler actor calls ``plan`` under its lock.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

MAX_ITERATIONS = 10_000
MAX_ACTIVATIONS = 1_000


class PlannerError(RuntimeError):
    """The planner exceeded its iteration or activation bound: the scheduler fails fast."""


@dataclass(frozen=True)
class Pipeline:
    """One registered pipeline's view, taken after phase 2 of the same plan."""

    pid: int
    mapping: tuple[int, ...]  # sorted infer device mapping
    tp: int = 1
    active: tuple[int, ...] = ()  # active DP ranks, in active-list order
    streams: tuple[tuple[int, int], ...] = ()  # progress streams (T_i > 0, c_i >= 0)
    open: bool = False  # Open(p): its demand is known to the planner
    est: int = 0  # the open demand's estimate
    holds_gen: bool = False  # p holds a GEN allocation (possibly with no rank)
    removing: bool = False  # its cluster is being removed

    def bundle(self, d: int) -> frozenset[int]:
        return self.bundles[d]

    @functools.cached_property
    def bundles(self) -> tuple[frozenset[int], ...]:
        """B_p(d) for every rank d (the planner asks for them in its inner loops)."""
        return _bundles(self.mapping, self.tp)

    @property
    def ranks(self) -> int:
        return len(self.mapping) // self.tp


@functools.lru_cache(maxsize=256)
def _bundles(mapping: tuple[int, ...], tp: int) -> tuple[frozenset[int], ...]:
    # built once per mapping: a scheduler rebuilds its Pipeline views every cycle, the mappings stay
    return tuple(frozenset(mapping[d * tp:(d + 1) * tp]) for d in range(len(mapping) // tp))


@dataclass
class Plan:
    shrinks: list[tuple[int, int]] = field(default_factory=list)  # (pid, rank)
    expansions: list[tuple[int, int]] = field(default_factory=list)  # (pid, rank)
    idle: frozenset[int] = frozenset()  # leftover idle GPUs

    def active_after(self, p: Pipeline) -> set[int]:
        out = set(p.active) - {d for q, d in self.shrinks if q == p.pid}
        return out | {d for q, d in self.expansions if q == p.pid}


@dataclass
class _State:
    p: Pipeline
    rem: float
    pct: float
    elig: bool
    active: list[int]
    ratio: float = 0.0
    target: int = 0
    donated: bool = False  # gave a bundle in the floor pass: may not accept in this plan


def demand(p: Pipeline) -> tuple[float, float] | None:
    """(rem, pct) of step 1, or None when the pipeline is skipped."""
    st = sum(max(t, 1) for t, _ in p.streams)
    if p.streams and st > 0:
        rem, tgt = float(sum(t - min(c, t) for t, c in p.streams)), float(st)
    elif p.open and p.est >= 1:
        rem = tgt = float(p.est)
    else:
        return None
    if p.open:
        rem += tgt
    return rem, rem / tgt


def plan(pipelines: list[Pipeline], idle: set[int], reserved: set[int] = frozenset(),  # type: ignore[assignment]
         protected: set[tuple[int, int]] = frozenset(), *, floor: bool = False) -> Plan:  # type: ignore[assignment]
    """Phase 3b: shrink and expansion operations for ``pipelines`` (registration order)."""
    free = set(idle) - set(reserved)
    prot = set(protected)
    out = Plan()
    states: dict[int, _State] = {}
    for p in pipelines:
        d = demand(p)
        if d is None:
            continue
        elig = not p.removing and (p.open or bool(p.active) or p.holds_gen)
        states[p.pid] = _State(p, d[0], d[1], elig, list(p.active))
    W = sum(s.rem * s.p.tp for s in states.values() if s.elig)
    B = len(free) + sum(len(s.active) * s.p.tp for s in states.values())
    if B == 0:
        out.idle = frozenset(free)
        return out
    for s in states.values():
        if s.elig and W > 0:
            s.ratio = s.rem * s.p.tp / W
            s.target = s.p.tp * max(1, math.floor(s.ratio * B / s.p.tp + 0.5))
    if floor:
        _floor_pass(states, free, reserved, prot, out, W)
    # Each iteration either activates one rank or ends the loop, so iterations count activations.
    for activations in range(1, MAX_ITERATIONS + 1):
        gaps = {pid: s.ratio - len(s.active) * s.p.tp / B for pid, s in states.items()}
        acceptors = sorted(
            (pid for pid, s in states.items()
             if gaps[pid] > 0 and s.elig and len(s.active) * s.p.tp < s.target and s.ratio > 0
             and not s.donated),
            key=lambda pid: (-gaps[pid] / states[pid].ratio, -gaps[pid], pid))
        if not any(_try_activate(states[pid], states, gaps, free, reserved, prot, out) for pid in acceptors):
            break
        if activations > MAX_ACTIVATIONS:
            raise PlannerError(f"more than {MAX_ACTIVATIONS} activations")
    else:
        raise PlannerError(f"more than {MAX_ITERATIONS} iterations")
    out.idle = frozenset(free)
    return out


def _keep(s: _State) -> int:
    return max(1, s.target // s.p.tp) if s.elig and s.target > 0 else 0


def _try_activate(s: _State, states: dict[int, _State], gaps: dict[int, float], free: set[int],
                  reserved: set[int], prot: set[tuple[int, int]], out: Plan) -> bool:
    p = s.p
    if not (p.open or p.holds_gen):
        return False  # the guard: mutate nothing
    blocked, active, bundles = set(reserved), set(s.active), p.bundles
    candidates = [d for d in range(p.ranks)
                  if d not in active and (p.pid, d) not in prot and not (blocked and bundles[d] & blocked)]
    # A candidate that needs no donor scores (0, (), d), below every one that does: the lowest
    # such d is the answer, and the donor search (most of the work at 64 GPUs) is not needed.
    here = next((d for d in candidates if bundles[d] <= free), None)
    if here is not None:
        _move(s, here, [], states, free, prot, out)
        return True
    # Every other candidate needs donors: the pipelines above their ratio (gap < 0) with ranks
    # above their keep, asked in gap order; each donor's unprotected ranks indexed by GPU, so a
    # candidate looks up who holds its missing GPUs instead of scanning every donor's ranks.
    donors_in_order = [(q, max(0, len(q.active) - _keep(q)), _ranks_by_gpu(q, prot))
                       for q in sorted((q for q in states.values() if q.p.pid != p.pid), key=lambda q: gaps[q.p.pid])
                       if gaps[q.p.pid] < 0 and len(q.active) - _keep(q) > 0]
    if not donors_in_order:
        return False
    # The least score a candidate can have: one rank from the donor with the highest pct (a
    # score's first entry is minus its donors' lowest pct; a longer tuple with that prefix is
    # larger). The first candidate (lowest d) that reaches it is the answer.
    least = (-max(q.pct for q, _, _ in donors_in_order),)
    best: tuple | None = None
    for d in candidates:
        missing = set(p.bundle(d)) - free
        donors: list[tuple[int, int]] = []
        for q, budget, by_gpu in donors_in_order:
            taken = 0
            for pos in sorted({pos for g in missing for pos in by_gpu.get(g, ())}):  # q.active's order
                w = q.active[pos]
                if not missing or taken >= budget:
                    break
                if not q.p.bundle(w) & missing:
                    continue
                donors.append((q.p.pid, w))
                missing -= q.p.bundle(w)
                taken += 1
            if not missing:
                break
        if missing:
            continue
        pcts = tuple(-x for x in sorted(states[q].pct for q, _ in donors))
        score = (1, pcts, d)
        if best is None or score < best[0]:
            best = (score, d, donors)
            if pcts == least:
                break
    if best is None:
        return False
    _, d, donors = best
    _move(s, d, donors, states, free, prot, out)
    return True


def _ranks_by_gpu(q: _State, prot: set[tuple[int, int]]) -> dict[int, list[int]]:
    """GPU -> the positions in ``q.active`` of q's unprotected ranks whose bundles hold it."""
    out: dict[int, list[int]] = {}
    for pos, w in enumerate(q.active):
        if (q.p.pid, w) not in prot:
            for g in q.p.bundle(w):
                out.setdefault(g, []).append(pos)
    return out


def _move(s: _State, d: int, donors: list[tuple[int, int]], states: dict[int, _State], free: set[int],
          prot: set[tuple[int, int]], out: Plan) -> None:
    for q, w in donors:
        states[q].active.remove(w)
        out.shrinks.append((q, w))
        free |= states[q].p.bundle(w)
        prot.add((q, w))
    s.active.append(d)
    out.expansions.append((s.p.pid, d))
    prot.add((s.p.pid, d))
    free -= s.p.bundle(d)


def _floor_pass(states: dict[int, _State], free: set[int], reserved: set[int], prot: set[tuple[int, int]],
                out: Plan, W: float) -> None:
    """F3: before the loop, every needy eligible pipeline (weight > 0, no rank) gets one bundle:
    from the free GPUs at its lowest feasible rank, else from the visible pipeline with the most
    ranks above its K5 keep (ties: lowest id) that can cover one of its bundles."""
    for s in sorted(states.values(), key=lambda s: s.p.pid):
        if not (s.elig and s.rem > 0 and not s.active and (s.p.open or s.p.holds_gen)):
            continue
        p = s.p
        ranks = [d for d in range(p.ranks) if (p.pid, d) not in prot and not p.bundle(d) & set(reserved)]
        here = next((d for d in ranks if p.bundle(d) <= free), None)
        if here is not None:
            _move(s, here, [], states, free, prot, out)
            continue
        keep = {q.p.pid: (1 if q.elig and W > 0 else 0) for q in states.values()}
        for q in sorted((q for q in states.values() if q.p.pid != p.pid),
                        key=lambda q: (-(len(q.active) - keep[q.p.pid]), q.p.pid)):
            if len(q.active) - keep[q.p.pid] <= 0:
                continue
            choice = None
            for d in ranks:
                missing = p.bundle(d) - free
                ws = [w for w in q.active if (q.p.pid, w) not in prot and q.p.bundle(w) & missing]
                cover = set().union(*[q.p.bundle(w) for w in ws]) if ws else set()
                if missing <= cover and len(ws) <= len(q.active) - keep[q.p.pid]:
                    choice = (d, [(q.p.pid, w) for w in ws])
                    break
            if choice is not None:
                _move(s, choice[0], choice[1], states, free, prot, out)
                q.donated = True
                break

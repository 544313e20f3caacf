"""The scheduler's state: the generated gpu_alloc machine, driven by the scheduler's calls.

Every decision is a transition of the machine for the run's policy (``config.MACHINES``),
built at the run's sizes (NP pipelines, NG GPUs; the upstream policies' R rollouts): a pipeline's request, release,
dispatch and served rollout, a hook report or clear, and each scheduling cycle, which is
``plan`` (phase 2 and the planner's inputs), one ``move`` per GPU the gap-ratio planner
(``runtime/gap_ratio.py``) hands over, and ``commit``. The machine's guards are the spec's
planner contract, so a plan is checked move by move before it is committed.

Fenced numbers each pipeline's rollouts in the machine's window of R = 2 (its ``r`` and every
tag are relative to ``base[p]``, an unbounded int kept here): right after a signal the core
takes the spec's ``slide(p)`` (base + 1), and the run's last rollout ends with ``finish(p)``,
so a run of any length is the same finite machine, whose proofs cover it (docs/sched.md).

Synchronous and single-threaded: the Ray actor (``actor.py``) calls it under its asyncio lock;
tests drive it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from racefree.codegen.instance import machine_class
from racefree.runtime import gap_ratio
from racefree.runtime.base import GuardRejected, MachineBase, Recorder

from .config import SchedConfig
from .errors import ContractViolation, ProtocolRefused, UnknownPipeline

# request kind -> the pipeline action that makes the request
REQUESTS = {"train_init": "req_train_init", "infer_init": "req_infer_init", "gen_init": "req_gen_init",
            "gen": "signal", "train": "req_train"}
# release kind -> the pipeline actions that end the allocation (training: its step, then the release)
RELEASES = {"train_init": ("rel_train_init",), "infer_init": ("rel_infer_init",), "train": ("train_step", "release")}
INIT_PCS = {"ITRAIN", "ITRAINW", "ITRAINREL", "IINFER", "IINFERW", "IINFERREL", "IGEN", "IGENW"}
# hook message -> the coordinator's delivery
DELIVERIES = {"begin": "deliver_begin", "done": "deliver_done", "clear": "deliver_clear"}


@dataclass
class CoreStats:
    cycles: int = 0
    moves: int = 0
    refused_moves: int = 0     # planner moves the machine refused (K1-K6): skipped, counted
    floor_fills: int = 0       # K5 floor moves the machine had to add to the planner's plan
    empty_dispatches: int = 0
    gpu_seconds: float = 0.0   # allocated GPU-time (train, init and GEN ranks), integrated per transition
    started: float = field(default_factory=time.monotonic)
    transitions: int = 0



class SchedulerCore:
    """The machine plus the planner. Methods raise ``ProtocolRefused`` (nothing changed) when the
    spec does not allow a call now."""

    def __init__(self, config: SchedConfig, *, recorder: Recorder | None = None, monitor: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        cls = machine_class(config.spec, config.machine, config.consts)
        self.m: Any = cls(recorder=recorder, monitor=monitor)
        self.machine: MachineBase = self.m
        self._actions = frozenset(a.name for a in self.m.ACTIONS)  # which of the spec's actions this variant has
        self.stats = CoreStats(started=clock())
        self._clock = clock
        self._held = 0
        self._since = self.stats.started
        self.m.add_listener(self._account)
        # the rollout tags the machine has: 0..window-1 (the upstream policies: the whole run)
        self.window = len(self.m.domains("deliver_begin")[1]) if self._has("deliver_begin") else config.rollouts
        self.base = [0] * config.pipelines  # fenced: each pipeline's absolute rollout of the machine's r = 0

    # ----------------------------------------------------------------- views
    def ranks(self, pid: int) -> list[int]:
        return sorted(self.m.ranks[self._pid(pid)])

    def pc(self, pid: int) -> str:
        return str(self.m.pc[self._pid(pid)].name)

    def rollout(self, pid: int) -> int:
        """The absolute number of the pipeline's current rollout (after its last: the run's length)."""
        return self.base[self._pid(pid)] + int(self.m.r[pid])

    def waiting(self, pid: int) -> bool:
        return bool(self.m.waiting[self._pid(pid)])

    def gen_queued(self, pid: int) -> bool:
        """A GEN request of ``pid`` is queued (post_fix: it stays queued after a timeout)."""
        return bool(self.m.pendI[self._pid(pid)].name == "GEN")

    def init_done(self, pid: int) -> bool:
        """Past its init sequence (the spec's initDone)."""
        return self.pc(pid) not in INIT_PCS

    def turn(self, pid: int, stage: str) -> bool:
        """The driver's barriers: ``init`` once every earlier pipeline's init is done (inits run one
        at a time), ``loop`` once every init is done (the loops start together)."""
        if stage == "init":
            return all(self.init_done(q) for q in range(self._pid(pid)))
        if stage == "loop":
            return all(self.init_done(q) for q in range(self.config.pipelines))
        raise ProtocolRefused(f"unknown stage {stage!r}; stages: init, loop")

    def done(self, pid: int) -> bool:
        return self.pc(pid) in ("DONE", "GONE")

    def utilisation(self) -> float:
        """Allocated GPU-time over the pool's time since the core was built (the core's clock)."""
        span = self._clock() - self.stats.started
        return self.stats.gpu_seconds / (self.config.gpus * span) if span > 0 else 0.0

    def allocation(self, pid: int, kind: str) -> list[int]:
        """What a granted request of ``kind`` holds: the train block, every GPU, or the GEN ranks."""
        if kind in ("train", "train_init"):
            return self.config.train_gpus(pid)
        if kind == "infer_init":
            return list(range(self.config.gpus))
        return self.ranks(pid)

    # ----------------------------------------------------------- transitions
    def request(self, pid: int, kind: str) -> None:
        """Make the blocking request ``kind``; the caller then waits until ``waiting(pid)`` is false."""
        action = REQUESTS.get(kind)
        if action is None:
            raise ProtocolRefused(f"unknown request kind {kind!r}; kinds: {', '.join(REQUESTS)}")
        self._fire(action, pid)
        if self._has("slide") and self.m.enabled("slide", pid):  # fenced: r's signal fenced off r - 1
            self._fire("slide", pid)
            self.base[pid] += 1

    def release(self, pid: int, kind: str) -> None:
        actions = RELEASES.get(kind)
        if actions is None:
            raise ProtocolRefused(f"unknown release kind {kind!r}; kinds: {', '.join(RELEASES)}")
        if kind == "train" and self._has("finish") and self.rollout(pid) + 1 == self.config.rollouts:
            actions = ("train_step", "finish")  # fenced: the run's last rollout
        self._check(actions[0], pid)
        for a in actions:
            self._fire(a, pid)

    def dispatch(self, pid: int) -> list[int]:
        """Start rollout r; returns the ranks it starts with (empty: an empty dispatch, a bug the
        fenced design rules out)."""
        ranks = self.ranks(pid)
        self._fire("dispatch", pid)
        if not ranks:
            self.stats.empty_dispatches += 1
        return ranks

    def serve(self, pid: int) -> bool:
        """The rollout's samples are in: allowed only while the pipeline has a rank."""
        if not self.m.enabled("serve", self._pid(pid)):
            return False
        self._fire("serve", pid)
        return True

    def deliver(self, pid: int, message: str, rollout: int) -> bool:
        """A hook report or clear arrives. False: no such message is in flight (pre_fix sends
        none; a duplicate delivery)."""
        action = DELIVERIES.get(message)
        if action is None:
            raise ProtocolRefused(f"unknown hook message {message!r}; messages: {', '.join(DELIVERIES)}")
        tag = rollout - self.base[self._pid(pid)]  # fenced: below the window is dead (F1's fence): ignored
        if not (self._has(action) and 0 <= tag < (self.window or 0) and self.m.enabled(action, pid, tag)):
            return False
        self._fire(action, pid, tag)
        return True

    def unregister(self, pid: int) -> None:
        """kill_pipeline: the pipeline is gone; its GPUs go back to the pool, its requests,
        demand and progress are dropped (fenced only: the other variants' specs have no such step)."""
        if not self._has("unregister"):
            raise ProtocolRefused(f"the {self.config.policy} spec ({self.config.machine}) has no unregister")
        self._fire("unregister", pid)

    def gone(self, pid: int) -> bool:
        return self.pc(pid) == "GONE"

    def timeout(self, pid: int) -> bool:
        """post_fix: a waiting GEN request gives up (only while the scheduler is quiet)."""
        if not (self._has("timeout") and self.m.enabled("timeout", self._pid(pid))):
            return False
        self._fire("timeout", pid)
        return True

    def cycle(self) -> bool:
        """One scheduling cycle, if one is due (a wakeup, or a trigger such as demand with no rank):
        plan, the planner's moves (each checked by the machine), floor moves the contract still
        needs, commit. Returns whether a cycle ran."""
        # Each guard is evaluated once: the action is called and a refusal caught (at 8 pipelines
        # and 64 GPUs a guard is most of a cycle's cost, so no separate "enabled?" query).
        m = self.m
        try:
            m.plan()
        except GuardRejected:
            return False
        self.stats.cycles += 1
        owed = {q for q in m.must if not m.ranks[q]}
        # K5's floor is paid first (the spec's move guard insists); otherwise the planner's order
        for q, g in sorted(self._planned_moves(), key=lambda mv: mv[0] not in owed):
            try:
                m.move(q, g)
                self.stats.moves += 1
            except GuardRejected:
                self.stats.refused_moves += 1
        while True:
            try:
                m.commit()
                return True
            except GuardRejected:
                pass
            fill = self._floor_move()
            if fill is None:
                raise ContractViolation(f"the plan leaves pipelines {sorted(q for q in m.must if not m.ranks[q])} "
                                        "without the rank K4/K5 require, and no move can give them one")
            m.move(*fill)
            self.stats.floor_fills += 1

    # --------------------------------------------------------------- planner
    def _open(self, q: int) -> bool:
        m, policy = self.m, self.config.policy
        if policy == "fenced":
            return m.demand[q] is not None
        if policy == "post_fix":
            return bool(m.rop[q])
        return m.pendI[q].name == "GEN"

    def _planned_moves(self) -> list[tuple[int, int]]:
        """The gap-ratio plan for the machine's state after phase 2, as (pipeline, GPU) moves
        (TP = 1: rank d is GPU d, and a donor's shrunk rank is the receiver's new one)."""
        m, cfg = self.m, self.config
        pipelines = []
        for q in range(cfg.pipelines):
            if not m.registered[q]:
                continue
            streams = ((1, 1 if m.progDone[q] else 0),) if m.progTag[q] is not None else ()
            is_open = self._open(q)
            pipelines.append(gap_ratio.Pipeline(
                pid=q, mapping=tuple(range(cfg.gpus)), active=tuple(sorted(m.ranks[q])), streams=streams,
                open=is_open, est=1 if is_open else 0, holds_gen=bool(m.genAlloc[q])))
        plan = gap_ratio.plan(pipelines, set(m.idle), floor=True)
        return list(plan.expansions)

    def _floor_move(self) -> tuple[int, int] | None:
        """The first move the machine allows towards a pipeline still owed its floor: free GPUs
        first, then any donor's, lowest numbers first."""
        m = self.m
        free = sorted(m.idle)
        others = [g for g in range(self.config.gpus) if g not in m.idle]
        for q in sorted(q for q in m.must if not m.ranks[q]):
            for g in free + others:
                if m.enabled("move", q, g):
                    return q, g
        return None

    # ---------------------------------------------------------------- helpers
    def _pid(self, pid: int) -> int:
        if not isinstance(pid, int) or not 0 <= pid < self.config.pipelines:
            raise UnknownPipeline(f"no pipeline {pid!r}: this scheduler has pipelines 0..{self.config.pipelines - 1}")
        return pid

    def _has(self, action: str) -> bool:
        return action in self._actions

    def _check(self, action: str, pid: int) -> None:
        if not self.m.enabled(action, self._pid(pid)):
            raise ProtocolRefused(f"{action}({pid}) is not allowed now: pipeline {pid} is at {self.pc(pid)} "
                                  f"({self.config.machine})")

    def _fire(self, action: str, *args: int) -> None:
        self._pid(args[0])
        try:
            self.m.fire(action, *args)
        except GuardRejected:
            raise ProtocolRefused(f"{action}{args} is not allowed now: pipeline {args[0]} is at "
                                  f"{self.pc(args[0])} ({self.config.machine})") from None

    def _account(self, action: str, args: tuple[Any, ...]) -> None:
        now = self._clock()
        self.stats.gpu_seconds += self._held * (now - self._since)
        self.stats.transitions += 1
        self._since = now
        self._held = self.config.gpus - len(self.m.idle)

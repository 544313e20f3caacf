"""The scheduler as a Ray asyncio actor (gpu_alloc brief, section 8).

Every public method is ``async def`` and runs on the actor's one event loop. All state sits
behind one ``asyncio.Lock`` (the condition ``_cond`` is built on it); a planning task waits on
an ``asyncio.Event`` (set by every request, release, report, clear and dispatch) or the
periodic poll, and runs one scheduling cycle of ``SchedulerCore`` under the lock. A blocking
request waits on the condition, which every cycle notifies; waiting releases the lock, so a
blocked call never stops the release that would unblock it.

Resizes run outside the lock (brief §8): a resize task pushes each pipeline's ranks to its
resize target (``set_resize_target``: an actor with ``async def resize(ranks)``) whenever they
change, pure shrinks before growths, each call within ``resize_timeout_s``; a target that does
not answer in time fails the scheduler fast (``ResizeFailed``) instead of stalling everyone.

Start it with ``start_scheduler``: a named actor (``get_if_exists=True``), detached so it
outlives whoever created it, ``max_restarts=0`` (its state lives in memory only, so a crash
must fail fast rather than come back having forgotten every allocation).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from racefree.runtime.base import Recorder

from .config import SchedConfig
from .core import SchedulerCore
from .errors import (
    ContractViolation,
    ProtocolRefused,
    RequestTimeout,
    ResizeFailed,
    SchedError,
    UnknownPipeline,
)

SCHEDULER_NAME = "racefree-gpu-scheduler"
_QUIET_CYCLES = 100  # signal_gave_up: cycles it runs at most to let post_fix's timeout fire


class Scheduler:
    """Wrap with ``ray.remote`` (``start_scheduler`` does) or use in-process from asyncio code."""

    def __init__(self, config: dict[str, Any], trace_dir: str | None = None, monitor: bool = False) -> None:
        self.config = SchedConfig(**config)
        self._recorder = Recorder.for_process(Path(trace_dir), "scheduler") if trace_dir else None
        self.core = SchedulerCore(self.config, recorder=self._recorder, monitor=monitor)
        self._names: dict[str, int] = {}
        self._admitted: set[int] = set()
        self._failed: str | None = None
        self._failure: type[SchedError] = ContractViolation  # raised to every later caller
        self._cond: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None
        self._planner: asyncio.Task[None] | None = None
        self._blocked = 0  # calls blocked in a wait right now (each holds one of Ray's slots)
        self._targets: dict[int, Any] = {}  # pipeline -> the actor its ranks are pushed to
        self._pushed: dict[int, tuple[int, ...]] = {}  # pipeline -> the ranks it last applied
        self._resizes = 0
        self._resize_wake: asyncio.Event | None = None
        self._resizer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ registry
    async def register_pipeline(self, name: str) -> int:
        """A new pipeline's id (0..NP-1, in registration order); the same name twice is an error."""
        async with self._locked():
            if name in self._names:
                raise UnknownPipeline(f"pipeline {name!r} is already registered as {self._names[name]}")
            if len(self._names) >= self.config.pipelines:
                raise UnknownPipeline(f"this scheduler was built for {self.config.pipelines} pipelines")
            self._names[name] = len(self._names)
            return self._names[name]

    async def admit_pipeline(self, pid: int) -> None:
        async with self._locked():
            self.core.pc(pid)  # UnknownPipeline for a bad id
            if pid >= len(self._names):
                raise UnknownPipeline(f"pipeline {pid} was never registered")
            self._admitted.add(pid)

    async def unregister_pipeline(self, pid: int) -> None:
        """The orchestrator's kill_pipeline: the pipeline's GPUs return to the pool, its pending
        request is dropped (its waiter gets ``UnknownPipeline``), later calls for it are refused."""
        async with self._locked():
            self._admitted_or_raise(pid)
            self.core.unregister(pid)
            self._targets.pop(pid, None)  # its engines went with it
            self._wake_planner()

    async def set_resize_target(self, pid: int, target: Any) -> None:
        """Push ``pid``'s ranks to ``target`` (an actor with ``async def resize(ranks)``: the
        pipeline's engines, or the coordinator that resizes them) from now on, the current ones
        first. Pushes run outside the lock, pure shrinks before growths (a growth's GPUs are what
        a shrink frees), each within ``resize_timeout_s``."""
        async with self._locked():
            self._admitted_or_raise(pid)
            self._targets[pid] = target
            self._pushed.pop(pid, None)

    # ------------------------------------------------------------- requests
    async def request_gpus(self, pid: int, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """Make a blocking request and wait for its grant: ``{"gpus": [...], "outcome": ...}``.

        outcome: ``granted``; ``early`` (post_fix: the pipeline already had ranks) or ``refused``
        (post_fix: a duplicate pending request, swallowed upstream), never queued; ``pending``
        (fenced, F6: every slot a call may block in is taken, so the request is queued and the
        caller polls ``await_grant``). A request not granted within ``timeout_s`` (default: the
        signal timeout) raises ``RequestTimeout`` and stays queued, as in the spec. post_fix's
        GEN requests are upstream's coroutines instead: they wait for their grant however long it
        takes; the caller gives up on its own clock and calls ``signal_gave_up``, and the
        orphaned coroutine keeps its Ray slot (the brief's W8)."""
        async with self._locked() as cond:
            self._admitted_or_raise(pid)
            refused_before = bool(self.core.m.refused[pid])
            self.core.request(pid, kind)
            if not self.core.waiting(pid):  # post_fix: an early return or a duplicate, never queued
                self._wake_planner()
                outcome = "refused" if self.core.m.refused[pid] and not refused_before else "early"
                return {"gpus": self.core.allocation(pid, kind), "outcome": outcome}
            self._run_cycle(cond)  # the cycle the planning task would run next, without its hop
            return await self._await_grant(cond, pid, kind, timeout_s)

    async def await_grant(self, pid: int, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait again for a queued request (one that timed out, or was answered ``pending``)."""
        async with self._locked() as cond:
            self._admitted_or_raise(pid)
            return await self._await_grant(cond, pid, kind, timeout_s)

    async def signal_gave_up(self, pid: int) -> dict[str, Any]:
        """post_fix: the pipeline's signal timed out at the caller (upstream's 60 s timeout on the
        call). This is the spec's ``timeout``, fired once the scheduler is quiet: while it is
        not, the cycle that is due runs first (the 60 s are long enough for it upstream). The
        request stays queued. Returns the outcome the pipeline goes on with: ``timed_out``, or
        ``granted`` if a cycle granted it first."""
        async with self._locked() as cond:
            self._admitted_or_raise(pid)
            if self.config.policy != "post_fix":
                raise ProtocolRefused(f"only post_fix's signal times out at the caller, not {self.config.policy}'s")
            for _ in range(_QUIET_CYCLES):
                if not self.core.waiting(pid):
                    return self._granted(pid, "gen")
                if self.core.timeout(pid):
                    return {"gpus": self.core.ranks(pid), "outcome": "timed_out"}
                self._run_cycle(cond)
            raise ProtocolRefused(f"the scheduler did not become quiet within {_QUIET_CYCLES} cycles, "
                                  f"so pipeline {pid}'s signal cannot time out yet; call again")

    async def turn(self, pid: int, stage: str) -> bool:
        """Whether the driver's barrier ``stage`` has passed for ``pid`` (``init``: the earlier
        pipelines' inits are done; ``loop``: every init is done). Never blocks: the handle polls."""
        async with self._locked():
            self._admitted_or_raise(pid)
            return self.core.turn(pid, stage)

    async def notify_release_gpus(self, pid: int, kind: str) -> None:
        async with self._locked():
            self._admitted_or_raise(pid)
            self.core.release(pid, kind)
            self._wake_planner()

    async def dispatch(self, pid: int) -> list[int]:
        """The pipeline starts its next rollout with these ranks (empty: an empty dispatch)."""
        async with self._locked():
            self._admitted_or_raise(pid)
            ranks = self.core.dispatch(pid)
            self._wake_planner()
            return ranks

    async def serve(self, pid: int) -> bool:
        """The rollout's samples are collected; False while the pipeline has no rank to serve them."""
        async with self._locked():
            self._admitted_or_raise(pid)
            return self.core.serve(pid)

    async def ranks(self, pid: int) -> list[int]:
        async with self._locked():
            return self.core.ranks(pid)

    # ------------------------------------------------------------ hook relay
    async def report_progress(self, pid: int, rollout: int, done: bool = False) -> bool:
        """A progress report (begin: c = 0, done: c = T) arrives; False if none is in flight."""
        return await self._deliver(pid, "done" if done else "begin", rollout)

    async def clear_progress(self, pid: int, rollout: int) -> bool:
        return await self._deliver(pid, "clear", rollout)

    async def deliver_many(self, pid: int, messages: list[tuple[str, int]]) -> list[bool]:
        """Several hook messages (``begin``/``done``/``clear``, rollout) applied in order under one
        hold of the lock, so no scheduling cycle runs between them: a relay that batches, or two
        messages that land back to back."""
        async with self._locked():
            self._admitted_or_raise(pid)
            taken = [self.core.deliver(pid, message, rollout) for message, rollout in messages]
            if any(taken):
                self._wake_planner()
            return taken

    # --------------------------------------------------------------- status
    async def status(self) -> dict[str, Any]:
        async with self._locked(check=False):
            st = self.core.stats
            return {
                "failed": self._failed, "policy": self.config.policy, "config": self.config.to_json(),
                "blocked_calls": self._blocked,
                "pc": [self.core.pc(p) for p in range(self.config.pipelines)],
                "ranks": [self.core.ranks(p) for p in range(self.config.pipelines)],
                "cycles": st.cycles, "moves": st.moves, "refused_moves": st.refused_moves, "resizes": self._resizes,
                "floor_fills": st.floor_fills, "empty_dispatches": st.empty_dispatches,
                "transitions": st.transitions, "gpu_utilisation": round(self.core.utilisation(), 4),
            }

    async def close(self) -> dict[str, Any]:
        """Stop planning and flush the trace; returns the final status."""
        for task in (self._planner, self._resizer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        out = await self.status()
        if self._recorder is not None:
            self._recorder.close()
        return out

    async def ping(self, *args: Any) -> None:
        """Does nothing: the bare round trip the benchmark compares a request with (with a
        request's arguments, or none)."""

    # -------------------------------------------------------------- internals
    @contextlib.asynccontextmanager
    async def _locked(self, check: bool = True) -> Any:
        if self._cond is None:  # built on the actor's own loop, at the first call
            self._cond = asyncio.Condition()
            self._wake, self._resize_wake = asyncio.Event(), asyncio.Event()
            self._planner = asyncio.get_running_loop().create_task(self._plan_forever())
            self._resizer = asyncio.get_running_loop().create_task(self._resize_forever())
        async with self._cond:
            if check:
                self._raise_if_failed()
            try:
                yield self._cond
            finally:
                self._cond.notify_all()  # a barrier or a grant may depend on what this call changed
                if self._targets:
                    self._resize_wake.set()  # type: ignore[union-attr]

    def _wake_planner(self) -> None:
        assert self._wake is not None
        self._wake.set()

    def _admitted_or_raise(self, pid: int) -> None:
        if self.core.pc(pid) == "GONE":
            raise UnknownPipeline(f"pipeline {pid} was unregistered")
        if pid not in self._admitted:
            raise UnknownPipeline(f"pipeline {pid} is not admitted")

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise self._failure(f"the scheduler has failed: {self._failed}")

    def _fail(self, cond: asyncio.Condition, failure: type[SchedError], why: str) -> None:
        """Fail fast: kept, raised to every later call, and every waiter is woken to hear it."""
        self._failed, self._failure = why, failure
        cond.notify_all()

    def _queued(self, pid: int, kind: str) -> bool:
        """Whether ``pid``'s request of ``kind`` is still waiting for its grant. A post_fix GEN
        request waits for the grant of the queued request itself: after the caller's timeout the
        pipeline has stopped waiting, but the request (and upstream's coroutine) has not."""
        if self.config.policy == "post_fix" and kind in ("gen", "gen_init"):
            return self.core.gen_queued(pid)
        return self.core.waiting(pid)

    def _granted(self, pid: int, kind: str) -> dict[str, Any]:
        return {"gpus": self.core.allocation(pid, kind), "outcome": "granted"}

    async def _await_grant(self, cond: asyncio.Condition, pid: int, kind: str,
                           timeout_s: float | None) -> dict[str, Any]:
        if not self._queued(pid, kind):
            return self._granted(pid, kind)
        slots = self.config.blocking_slots
        if slots is not None and self._blocked >= slots:
            return {"gpus": [], "outcome": "pending"}  # F6: queued; the caller polls
        orphanable = self.config.policy == "post_fix" and kind in ("gen", "gen_init")
        timeout = None if orphanable else self.config.signal_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._blocked += 1
        try:
            while self._queued(pid, kind):  # an unregister ends the wait too (see below)
                self._raise_if_failed()
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise RequestTimeout(f"pipeline {pid}'s {kind} request was not granted within {timeout:g} s; "
                                         "it stays queued")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait(), remaining)
        finally:
            self._blocked -= 1
        if self.core.gone(pid):
            raise UnknownPipeline(f"pipeline {pid} was unregistered while it waited")
        return self._granted(pid, kind)

    async def _deliver(self, pid: int, message: str, rollout: int) -> bool:
        async with self._locked():
            self._admitted_or_raise(pid)
            taken = self.core.deliver(pid, message, rollout)
            if taken:
                self._wake_planner()
            return taken

    async def _plan_forever(self) -> None:
        assert self._cond is not None and self._wake is not None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
            except TimeoutError:  # idle for a poll: write the trace out, so a hung run still has it
                if self._recorder is not None:
                    self._recorder.flush()
            self._wake.clear()
            async with self._cond:
                try:
                    self._run_cycle(self._cond)
                except ContractViolation:
                    return

    async def _resize_forever(self) -> None:
        """Push each pipeline's ranks to its resize target when they change, outside the lock."""
        assert self._cond is not None and self._resize_wake is not None
        while True:
            await self._resize_wake.wait()
            self._resize_wake.clear()
            async with self._cond:  # one consistent allocation: no two targets hold a GPU in it
                targets = dict(self._targets)
                want = {pid: tuple(self.core.ranks(pid)) for pid in targets}
            changed = {pid: r for pid, r in want.items() if r != self._pushed.get(pid)}
            shrinks = {pid for pid, r in changed.items() if pid in self._pushed and set(r) <= set(self._pushed[pid])}
            for batch in (sorted(shrinks), sorted(changed.keys() - shrinks)):  # a growth waits for shrinks
                why = await self._push({pid: changed[pid] for pid in batch}, targets)
                if why is not None:
                    async with self._cond:
                        self._fail(self._cond, ResizeFailed, why)
                    return

    async def _push(self, ranks: dict[int, tuple[int, ...]], targets: dict[int, Any]) -> str | None:
        """One batch of resize calls at once; why the scheduler must fail, or None."""
        import ray

        timeout = self.config.resize_timeout_s
        calls = [asyncio.wait_for(targets[pid].resize.remote(list(r)).as_future(), timeout) for pid, r in ranks.items()]
        for (pid, r), out in zip(ranks.items(), await asyncio.gather(*calls, return_exceptions=True), strict=True):
            if isinstance(out, ray.exceptions.RayActorError):
                self._targets.pop(pid, None)  # the pipeline's actor died; unregister returns its GPUs
            elif isinstance(out, TimeoutError):
                return f"pipeline {pid} did not apply its ranks {list(r)} within {timeout:g} s (resize_timeout_s)"
            elif isinstance(out, BaseException):
                return f"pipeline {pid}'s resize to {list(r)} raised {type(out).__name__}: {out}"
            else:
                self._pushed[pid] = r
                self._resizes += 1
        return None

    def _run_cycle(self, cond: asyncio.Condition) -> bool:
        """One scheduling cycle if one is due; caller holds the lock. Any error fails the
        scheduler fast: it is kept, every waiter is woken to hear it, and it is raised."""
        try:
            ran = self.core.cycle()
        except Exception as exc:
            self._fail(cond, ContractViolation, f"{type(exc).__name__}: {exc}")
            raise ContractViolation(f"the scheduler has failed: {self._failed}") from exc
        if ran:
            cond.notify_all()
        return ran


def start_scheduler(config: SchedConfig, trace_dir: str | None = None, *, name: str = SCHEDULER_NAME,
                    namespace: str | None = None, monitor: bool = False) -> Any:
    """Create (or find) the named, detached scheduler actor, with ``config.max_concurrency`` as
    Ray's limit on calls running in it at once. A blocked request holds one of those slots: the
    fenced policy never lets blocked calls take the last two (F6), the others are upstream's
    (W8: a limit too small for the blocked calls hangs them)."""
    import ray

    actor = ray.remote(Scheduler).options(  # type: ignore[attr-defined]
        name=name, namespace=namespace, get_if_exists=True, lifetime="detached", max_restarts=0,
        max_task_retries=0, max_concurrency=config.max_concurrency, num_cpus=0)
    return actor.remote(config.to_json(), trace_dir, monitor)


__all__ = ["SCHEDULER_NAME", "ProtocolRefused", "Scheduler", "start_scheduler"]

"""What a pipeline's training loop holds: ``PipelineHandle``, async calls on the scheduler actor.

    handle = await PipelineHandle.register("ppo-a")          # looks the scheduler up by name
    await handle.resize_to(engines)                           # its GEN ranks are pushed to engines.resize(ranks)
    await handle.init()                                       # train and infer INIT, then GEN (policy-dependent)
    await handle.wait_loop()                                  # every pipeline's init is done
    for r in range(rollouts):
        await handle.signal()                                 # post_fix/fenced: demand for rollout r
        ranks = await handle.dispatch()                       # the ranks rollout r starts with
        ...generate while await handle.ranks() is non-empty, report progress via the coordinator...
        await handle.served()                                 # waits for a rank if it has none
        gpus = await handle.request("train")
        ...train on gpus...
        await handle.release("train")                         # after the last rollout: unregistered

Every call is one or more transitions of the scheduler's generated machine; a call out of the
loop's order raises ``ProtocolRefused`` and changes nothing. Errors cross the Ray boundary as
their own types (``SchedError`` and its subclasses).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .actor import SCHEDULER_NAME
from .errors import RequestCancelled, RequestTimeout, SchedError, SchedulerUnresponsive

log = logging.getLogger(__name__)


class PipelineHandle:
    """``answer_s``: how long a call may go unanswered beyond the wait it asked for (None: no
    limit) before the handle raises ``SchedulerUnresponsive``: a scheduler whose Ray slots are all
    held by blocked calls (W8) never starts the call, so only the caller's clock can tell."""

    def __init__(self, scheduler: Any, pid: int, *, policy: str, signal_timeout_s: float = 60.0,
                 poll_s: float = 0.02, answer_s: float | None = 60.0) -> None:
        self.scheduler = scheduler
        self.pid = pid
        self.policy = policy
        self.signal_timeout_s = signal_timeout_s
        self.poll_s = poll_s
        self.answer_s = answer_s

    @classmethod
    async def register(cls, name: str, *, scheduler_name: str = SCHEDULER_NAME, namespace: str | None = None,
                       admit: bool = True, answer_s: float | None = 60.0) -> PipelineHandle:
        import ray

        sched = ray.get_actor(scheduler_name, namespace=namespace)
        pid = await _call(sched.register_pipeline, name, within=answer_s)
        if admit:
            await _call(sched.admit_pipeline, pid, within=answer_s)
        config = (await _call(sched.status, within=answer_s))["config"]
        return cls(sched, pid, policy=config["policy"], signal_timeout_s=config["signal_timeout_s"], answer_s=answer_s)

    async def request(self, kind: str, timeout_s: float | None = None) -> list[int]:
        """A blocking request (``train_init``, ``infer_init``, ``gen_init``, ``gen``, ``train``);
        returns the GPUs granted. Raises ``RequestTimeout`` (the request stays queued)."""
        return list((await self.request_outcome(kind, timeout_s))["gpus"])

    async def request_outcome(self, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """``request`` with the outcome (granted, early, refused, timed_out) as well. ``timeout_s``
        (default: the scheduler's signal timeout) bounds the wait for the grant."""
        wait = self.signal_timeout_s if timeout_s is None else timeout_s
        if self.policy == "post_fix" and kind == "gen":
            return await self._post_fix_signal(wait)
        deadline = asyncio.get_running_loop().time() + wait
        return await self._granted(kind, await self._call(self.scheduler.request_gpus, kind, wait, wait=wait), deadline)

    async def await_grant(self, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait again for a request that timed out (it stays queued)."""
        wait = self.signal_timeout_s if timeout_s is None else timeout_s
        deadline = asyncio.get_running_loop().time() + wait
        return await self._granted(kind, await self._call(self.scheduler.await_grant, kind, wait, wait=wait), deadline)

    async def _granted(self, kind: str, out: dict[str, Any], deadline: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while out["outcome"] == "pending":  # fenced, F6: no slot to block in; queued, so poll for the grant
            left = deadline - loop.time()
            if left <= 0:
                raise RequestTimeout(f"pipeline {self.pid}'s {kind} request was not granted in time; it stays queued")
            await asyncio.sleep(self.poll_s)
            out = await self._call(self.scheduler.await_grant, kind, left, wait=left)
        return dict(out)

    async def release(self, kind: str) -> None:
        await self._call(self.scheduler.notify_release_gpus, kind)

    async def report_progress(self, rollout: int, done: bool = False) -> bool:
        """A progress report for ``rollout`` (begin: c = 0; done: c = T), straight to the scheduler
        (upstream relays them through a coordinator, fire-and-forget: any order). False: the
        scheduler had no such report in flight (pre_fix sends none; a duplicate)."""
        return bool(await self._call(self.scheduler.report_progress, rollout, done))

    async def clear_progress(self, rollout: int) -> bool:
        return bool(await self._call(self.scheduler.clear_progress, rollout))

    async def resize_to(self, target: Any) -> None:
        """From now on the scheduler pushes this pipeline's GEN ranks to ``target``, an actor with
        ``async def resize(ranks)`` (its engines), outside its lock and within its resize timeout."""
        await self._call(self.scheduler.set_resize_target, target)

    async def init(self, timeout_s: float | None = None,
                   use: Callable[[str, list[int]], Awaitable[None]] | None = None) -> None:
        """The init sequence of the brief's pipeline: wait for the earlier pipelines' inits, then
        train and infer clusters at INITIALIZATION, each used (``use(kind, gpus)``: load the
        model on them) and released, then (every policy but fenced) the blocking GEN request.
        ``timeout_s`` bounds each wait (None: the barrier waits as long as it takes, a request
        its scheduler's signal timeout)."""
        await self._barrier("init", timeout_s)
        for kind in ("train_init", "infer_init"):
            gpus = await self.request(kind, timeout_s)
            if use is not None:
                await use(kind, gpus)
            await self.release(kind)
        if self.policy != "fenced":
            await self.request("gen_init", timeout_s)

    async def wait_loop(self, timeout_s: float | None = None) -> None:
        """The train loops start once every pipeline's init is done (the driver's barrier)."""
        await self._barrier("loop", timeout_s)

    async def signal(self, timeout_s: float | None = None, max_wait_s: float | None = None) -> dict[str, Any]:
        """Demand for the next rollout (post_fix and fenced; other policies have no signal).

        Fenced with ``max_wait_s`` (F5): a wait past ``timeout_s`` is logged and goes on; past
        ``max_wait_s`` the request is cancelled: the pipeline is unregistered (its request,
        demand, pin and GPUs dropped: the spec's ``unregister``) and ``RequestCancelled`` is
        raised. Without it, ``RequestTimeout`` after ``timeout_s`` (the request stays queued)."""
        if max_wait_s is None or self.policy != "fenced":
            return await self.request_outcome("gen", timeout_s)
        wait = self.signal_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        call = functools.partial(self.request_outcome, "gen")
        while (left := deadline - loop.time()) > 0:
            try:
                return await call(min(wait, left))
            except SchedulerUnresponsive:
                raise
            except RequestTimeout:
                log.warning("pipeline %d: no rank for its next rollout after %g s; still waiting (F5)",
                            self.pid, max_wait_s - max(0.0, deadline - loop.time()))
                call = functools.partial(self.await_grant, "gen")
        await self._call(self.scheduler.unregister_pipeline)
        raise RequestCancelled(f"pipeline {self.pid} had no rank for its next rollout within {max_wait_s:g} s: "
                               "its request is cancelled and the pipeline unregistered (F5)")

    async def dispatch(self) -> list[int]:
        return list(await self._call(self.scheduler.dispatch))

    async def ranks(self) -> list[int]:
        return list(await self._call(self.scheduler.ranks))

    async def served(self, timeout_s: float | None = None) -> None:
        """The rollout's samples are in; waits while the pipeline has no rank to serve them."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not await self._call(self.scheduler.serve):
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"pipeline {self.pid} had no rank to serve its rollout for {timeout_s:g} s")
            await asyncio.sleep(self.poll_s)

    async def _barrier(self, stage: str, timeout_s: float | None) -> None:
        """Poll the driver's barrier (a scheduler call that never blocks, so it holds no slot)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not await self._call(self.scheduler.turn, stage):
            if deadline is not None and loop.time() > deadline:
                raise RequestTimeout(f"pipeline {self.pid} waited {timeout_s:g} s for the {stage} barrier")
            await asyncio.sleep(self.poll_s)

    async def _post_fix_signal(self, wait: float) -> dict[str, Any]:
        """Upstream's signal: the blocking GEN request with a timeout on the caller's side. On the
        timeout the scheduler's coroutine keeps waiting (orphaned, holding its Ray slot) and the
        pipeline, told ``signal_gave_up``, dispatches anyway."""
        try:
            return dict(await _call(self.scheduler.request_gpus, self.pid, "gen", None, within=wait))
        except SchedulerUnresponsive:
            return dict(await self._call(self.scheduler.signal_gave_up))

    async def _call(self, method: Any, *args: Any, wait: float = 0.0) -> Any:
        within = None if self.answer_s is None else wait + self.answer_s
        return await _call(method, self.pid, *args, within=within)


async def _call(method: Any, *args: Any, within: float | None = None) -> Any:
    """Await an actor call, for at most ``within`` seconds (``SchedulerUnresponsive`` after); a
    scheduler error arrives as its own type (Ray's RayTaskError subclasses the cause's type, but
    its message carries the remote traceback)."""
    try:
        ref = method.remote(*args)
        # an asyncio future of the reply: wait_for then needs no task of its own (a coroutine would)
        return await (ref if within is None else asyncio.wait_for(ref.as_future(), within))
    except SchedError as exc:  # first: a RequestTimeout from the scheduler is a TimeoutError too
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, SchedError) else exc) from None
    except TimeoutError:
        raise SchedulerUnresponsive(f"the scheduler did not answer {_name(method)} within {within:g} s (hung: are "
                                    "its Ray max_concurrency slots all held by blocked calls? or gone)") from None


def _name(method: Any) -> str:
    return str(getattr(method, "_method_name", method))

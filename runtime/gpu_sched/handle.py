"""What a pipeline's training loop holds: ``PipelineHandle``, async calls on the scheduler actor.

    handle = await PipelineHandle.register("ppo-a")          # looks the scheduler up by name
    await handle.init()                                       # train and infer INIT, then GEN (policy-dependent)
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
from typing import Any

from .actor import SCHEDULER_NAME
from .errors import SchedError


class PipelineHandle:
    def __init__(self, scheduler: Any, pid: int, *, policy: str, poll_s: float = 0.01) -> None:
        self.scheduler = scheduler
        self.pid = pid
        self.policy = policy
        self.poll_s = poll_s

    @classmethod
    async def register(cls, name: str, *, scheduler_name: str = SCHEDULER_NAME, namespace: str | None = None,
                       admit: bool = True) -> PipelineHandle:
        import ray

        sched = ray.get_actor(scheduler_name, namespace=namespace)
        pid = await _call(sched.register_pipeline, name)
        if admit:
            await _call(sched.admit_pipeline, pid)
        policy = (await _call(sched.status))["policy"]
        return cls(sched, pid, policy=policy)

    async def request(self, kind: str, timeout_s: float | None = None) -> list[int]:
        """A blocking request (``train_init``, ``infer_init``, ``gen_init``, ``gen``, ``train``);
        returns the GPUs granted. Raises ``RequestTimeout`` (the request stays queued)."""
        out = await _call(self.scheduler.request_gpus, self.pid, kind, timeout_s)
        return list(out["gpus"])

    async def request_outcome(self, kind: str, timeout_s: float | None = None) -> dict[str, Any]:
        """``request`` with the outcome (granted, early, refused, timed_out) as well."""
        return dict(await _call(self.scheduler.request_gpus, self.pid, kind, timeout_s))

    async def release(self, kind: str) -> None:
        await _call(self.scheduler.notify_release_gpus, self.pid, kind)

    async def init(self, timeout_s: float | None = None) -> None:
        """The init sequence of the brief's pipeline: wait for the earlier pipelines' inits, then
        train and infer clusters at INITIALIZATION, each released, then (every policy but
        fenced) the blocking GEN request. ``timeout_s`` bounds each wait (None: the barrier
        waits as long as it takes, a request its scheduler's signal timeout)."""
        await _call(self.scheduler.wait_turn, self.pid, "init", timeout_s)
        for kind in ("train_init", "infer_init"):
            await self.request(kind, timeout_s)
            await self.release(kind)
        if self.policy != "fenced":
            await self.request("gen_init", timeout_s)

    async def wait_loop(self, timeout_s: float | None = None) -> None:
        """The train loops start once every pipeline's init is done (the driver's barrier)."""
        await _call(self.scheduler.wait_turn, self.pid, "loop", timeout_s)

    async def signal(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Demand for the next rollout (post_fix and fenced; other policies have no signal)."""
        return await self.request_outcome("gen", timeout_s)

    async def dispatch(self) -> list[int]:
        return list(await _call(self.scheduler.dispatch, self.pid))

    async def ranks(self) -> list[int]:
        return list(await _call(self.scheduler.ranks, self.pid))

    async def served(self, timeout_s: float | None = None) -> None:
        """The rollout's samples are in; waits while the pipeline has no rank to serve them."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not await _call(self.scheduler.serve, self.pid):
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"pipeline {self.pid} had no rank to serve its rollout for {timeout_s:g} s")
            await asyncio.sleep(self.poll_s)


async def _call(method: Any, *args: Any) -> Any:
    """Await an actor call; a scheduler error arrives as its own type (Ray's RayTaskError
    subclasses the cause's type, but its message carries the remote traceback)."""
    try:
        return await method.remote(*args)
    except SchedError as exc:
        cause = getattr(exc, "cause", None)
        raise (cause if isinstance(cause, SchedError) else exc) from None

"""``racefree demo sched``: NP pipelines sharing NG GPUs through the scheduler actor on a local Ray.

Actors (gpu_alloc brief, section 8):
- the **orchestrator** (startup only) creates the scheduler (named, detached), registers and
  admits the pipelines; ``kill_orchestrator`` kills it right after, and the run must not care;
- one **coordinator** relays hook messages (progress reports and clears) fire-and-forget, after
  random delays with ``reorder`` (so a clear of rollout r can land after the begin of r+1);
- one **pipeline** actor per pipeline runs the brief's train loop: init, then per rollout
  [signal], dispatch, generate (time advances only while it has a rank), serve, train, release.
  It is also its own engines: the scheduler pushes its GEN ranks to its ``resize`` (outside the
  scheduler's lock), and every GPU it uses is a Ray placement group of one ``gpu_resource``
  (``gpu_slot`` here, ``GPU`` on a GPU cluster): a rank's engine runs only once Ray has placed
  it, so Ray's own accounting backs the spec's no_double_allocation.

Each pipeline writes its own JSONL log; the scheduler records every transition of the machine,
and the demo replays that trace through the spec. A pipeline that makes no progress for
``stall_s`` gives up and is reported starved, with where it was stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .actor import SCHEDULER_NAME, start_scheduler
from .config import SchedConfig
from .core import INIT_PCS
from .errors import SchedError
from .handle import PipelineHandle

ORCHESTRATOR_NAME = "racefree-orchestrator"


@dataclass(frozen=True)
class DemoOptions:
    gen_s: float = 0.2         # generation work per rollout (advances only while the pipeline has a rank)
    train_s: float = 0.05      # training time per rollout
    skew: float = 0.0          # pipeline i's durations are scaled by 1 + skew * i
    reorder: bool = False      # the coordinator delays each hook message at random (up to max_delay_s)
    stale_clears: bool = False  # the coordinator holds each clear of rollout r until the begin of r+1 is in
    max_delay_s: float = 0.3
    dispatch_delay_s: float = 0.0  # between a granted signal and the dispatch (the grant-to-dispatch gap)
    kill_orchestrator: bool = False
    kill_pipeline: int | None = None  # kill this pipeline's actor kill_after_s into the run, then unregister it
    kill_after_s: float = 0.5
    stall_s: float = 10.0      # a pipeline stuck this long gives up and is reported starved
    seed: int = 0
    monitor: bool = False      # check every spec invariant after each transition (raises on the first)


@dataclass
class PipelineStats:
    pid: int
    rollouts: int = 0
    empty_dispatches: int = 0
    max_wait_s: float = 0.0
    starved: bool = False
    stuck_at: str | None = None     # what it was waiting for when it gave up
    error: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)  # signal outcomes (post_fix: early, refused, timed_out)


class Orchestrator:
    """Startup only: create the scheduler, register and admit the pipelines."""

    def __init__(self, config: dict[str, Any], trace_dir: str, namespace: str, monitor: bool) -> None:
        self.scheduler = start_scheduler(SchedConfig(**config), trace_dir, namespace=namespace, monitor=monitor)

    async def setup(self, names: list[str]) -> list[int]:
        pids = []
        for name in names:
            pid = await self.scheduler.register_pipeline.remote(name)
            await self.scheduler.admit_pipeline.remote(pid)
            pids.append(pid)
        return pids


class Coordinator:
    """Relays hook messages to the scheduler, fire-and-forget (as upstream's coordinator)."""

    def __init__(self, namespace: str, reorder: bool, max_delay_s: float, seed: int, stale_clears: bool) -> None:
        import ray

        self.scheduler = ray.get_actor(SCHEDULER_NAME, namespace=namespace)
        self.reorder, self.max_delay_s, self.stale_clears = reorder, max_delay_s, stale_clears
        self.rng = random.Random(seed)
        self.tasks: set[asyncio.Task[None]] = set()
        self.held: dict[int, int] = {}  # stale_clears: pipeline -> the rollout whose clear waits
        self.delivered = self.dropped = self.undelivered = 0

    async def relay(self, pid: int, message: str, rollout: int) -> None:
        if self.stale_clears and message == "clear":
            self.held[pid] = rollout  # lands right behind this pipeline's next begin report
            return
        if self.stale_clears and message == "begin" and self.held.get(pid) == rollout - 1:
            stale = self.held.pop(pid)
            task = asyncio.get_running_loop().create_task(self._send_pair(pid, rollout, stale))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        delay = self.rng.uniform(0, self.max_delay_s) if self.reorder else 0.0
        self._spawn(pid, message, rollout, delay)

    async def drain(self, timeout_s: float) -> dict[str, int]:
        """Send what is held and wait for every message in flight, for at most ``timeout_s`` (a
        hung scheduler never answers: what is left is cancelled and counted undelivered)."""
        for pid, rollout in sorted(self.held.items()):
            self._spawn(pid, "clear", rollout, 0.0)
        self.held.clear()
        if self.tasks:
            _, late = await asyncio.wait(list(self.tasks), timeout=timeout_s)
            for task in late:
                task.cancel()
            self.undelivered += len(late)
        return {"delivered": self.delivered, "dropped": self.dropped, "undelivered": self.undelivered}

    def _spawn(self, pid: int, message: str, rollout: int, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._send(pid, message, rollout, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, pid: int, message: str, rollout: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if message == "clear":
            ok = await self.scheduler.clear_progress.remote(pid, rollout)
        else:
            ok = await self.scheduler.report_progress.remote(pid, rollout, message == "done")
        self._count([ok])

    async def _send_pair(self, pid: int, rollout: int, stale: int) -> None:
        # the begin of rollout r and the clear of r-1 back to back: no cycle runs between them
        self._count(await self.scheduler.deliver_many.remote(pid, [("begin", rollout), ("clear", stale)]))

    def _count(self, taken: list[bool]) -> None:
        self.delivered += sum(taken)
        self.dropped += len(taken) - sum(taken)


class PipelineWorker:
    """One pipeline's train loop against the scheduler (the brief's section 5 program)."""

    def __init__(self, pid: int, config: dict[str, Any], options: dict[str, Any], namespace: str,
                 coordinator: Any, log_dir: str) -> None:
        import ray

        self.config, self.options = SchedConfig(**config), DemoOptions(**options)
        scale = 1 + self.options.skew * pid
        self.gen_s, self.train_s = self.options.gen_s * scale, self.options.train_s * scale
        # a call the scheduler leaves unanswered for the stall limit means it is hung (W8)
        self.handle = PipelineHandle(ray.get_actor(SCHEDULER_NAME, namespace=namespace), pid,
                                     policy=self.config.policy, signal_timeout_s=self.config.signal_timeout_s,
                                     answer_s=self.options.stall_s)
        self.coordinator = coordinator
        self.namespace = namespace
        self.stats = PipelineStats(pid)
        self.active: set[int] = set()  # GEN ranks whose engines are up (pushed by the scheduler)
        self.engines: dict[int, Any] = {}  # GEN rank -> the placement group of its GPU
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.log = open(Path(log_dir) / f"pipeline{pid}-{os.getpid()}.jsonl", "w", encoding="utf-8")  # noqa: SIM115

    async def run(self) -> dict[str, Any]:
        stall = self.options.stall_s
        try:
            await self.handle.resize_to(ray_self())
            await self._waited("init", self.handle.init(stall, use=self._use))
            await self._waited("the other pipelines' inits", self.handle.wait_loop(stall))
            for r in range(self.config.rollouts or 0):  # the demo runs a set number (SchedConfig's default 3)
                if self.config.signals:
                    out = await self._waited(f"signal({r})", self._signal())
                    self.stats.outcomes[out["outcome"]] = self.stats.outcomes.get(out["outcome"], 0) + 1
                    await asyncio.sleep(self.options.dispatch_delay_s)
                ranks = await self._waited(f"dispatch({r})", self.handle.dispatch())
                self._note("dispatch", r, ranks=ranks)
                if not ranks:
                    self.stats.empty_dispatches += 1
                if self.config.hooks:
                    await self.coordinator.relay.remote(self.handle.pid, "begin", r)
                await self._generate(r)
                await self._waited(f"serve({r})", self.handle.served(stall))
                if self.config.hooks:
                    await self.coordinator.relay.remote(self.handle.pid, "done", r)
                    await self.coordinator.relay.remote(self.handle.pid, "clear", r)
                gpus = await self._waited(f"train({r})", self.handle.request("train", stall))
                self._note("train", r, gpus=gpus)
                async with self._holding(f"train({r})", len(gpus)):
                    await asyncio.sleep(self.train_s)
                await self._waited(f"release({r})", self.handle.release("train"))
                self.stats.rollouts += 1
        except TimeoutError as exc:  # RequestTimeout and SchedulerUnresponsive included
            self.stats.starved, self.stats.error = True, str(exc)
            self.stats.stuck_at = self.stats.stuck_at or str(exc)
        except SchedError as exc:
            self.stats.error = f"{type(exc).__name__}: {exc}"
        self._note("end", self.stats.rollouts, starved=self.stats.starved, stuck_at=self.stats.stuck_at)
        self.log.close()
        return asdict(self.stats)

    async def resize(self, ranks: list[int]) -> None:
        """The scheduler's push of this pipeline's GEN ranks. A dropped rank's engine stops and its
        GPU goes back to Ray at once; a new rank's engine starts once Ray has placed its GPU."""
        from ray.util import remove_placement_group

        new = set(ranks)
        self.active &= new
        for g in sorted(self.engines.keys() - new):
            remove_placement_group(self.engines.pop(g))
        added = {g: self._gpu(f"rank{g}") for g in sorted(new - self.engines.keys())}
        self.engines.update(added)
        await asyncio.gather(*(pg.ready() for pg in added.values()))
        self.active = new

    def _gpu(self, what: str, n: int = 1) -> Any:
        """A placement group of n GPUs, named after this pipeline (so the orchestrator can remove
        a killed pipeline's). Ray places a group whole or not at all: n groups of one could each
        get a GPU of a too-small pool and hold it while waiting for the rest, and two pipelines
        doing that would wait on each other for good."""
        from ray.util import placement_group

        name = f"{gpu_prefix(self.namespace, self.handle.pid)}{what}-{uuid.uuid4().hex[:6]}"
        return placement_group([{self.config.gpu_resource: 1}] * n, name=name)

    @contextlib.asynccontextmanager
    async def _holding(self, what: str, n: int) -> AsyncIterator[None]:
        """n GPUs held from Ray for ``what`` (an init's loading, a training step)."""
        from ray.util import remove_placement_group

        pgs = [self._gpu(what, n)] if n else []
        try:
            try:
                await asyncio.wait_for(asyncio.gather(*(pg.ready() for pg in pgs)), self.options.stall_s)
            except TimeoutError:
                self.stats.stuck_at = f"{what}: Ray placed no {n} x {self.config.gpu_resource} in {self.options.stall_s:g} s"
                raise TimeoutError(self.stats.stuck_at) from None
            yield
        finally:
            for pg in pgs:
                remove_placement_group(pg)

    async def _use(self, kind: str, gpus: list[int]) -> None:
        async with self._holding(kind, len(gpus)):
            pass  # loading the model on the init cluster

    async def _signal(self) -> dict[str, Any]:
        # post_fix: the config's signal timeout ends the wait (upstream swallows it and dispatches);
        # the others wait up to the stall limit (fenced: a timeout only logs, F5)
        timeout = None if self.config.policy == "post_fix" else self.options.stall_s
        return await self.handle.signal(timeout)

    async def _generate(self, r: int) -> None:
        """gen_s of work that advances only while the pipeline has a rank."""
        tick, done, idle_since = 0.01, 0.0, time.monotonic()
        while done < self.gen_s:
            if self.active:
                await asyncio.sleep(tick)
                done += tick
                idle_since = time.monotonic()
            else:
                waited = time.monotonic() - idle_since
                self.stats.max_wait_s = max(self.stats.max_wait_s, waited)
                if waited > self.options.stall_s:
                    self.stats.stuck_at = f"generating rollout {r} with no rank"
                    raise TimeoutError(f"pipeline {self.handle.pid} had no rank for {waited:.1f} s "
                                       f"while generating rollout {r}")
                await asyncio.sleep(tick)

    async def _waited(self, what: str, call: Any) -> Any:
        start = time.monotonic()
        try:
            return await call
        except TimeoutError:  # RequestTimeout included
            inner = self.stats.stuck_at  # set by what timed out inside, if it said more
            self.stats.stuck_at = what if inner is None or inner.startswith(what) else f"{what}: {inner}"
            raise
        finally:
            self.stats.max_wait_s = max(self.stats.max_wait_s, time.monotonic() - start)

    def _note(self, event: str, rollout: int, **kw: Any) -> None:
        self.log.write(json.dumps({"time": time.time(), "pipeline": self.handle.pid, "event": event,
                                   "rollout": rollout, **kw}) + "\n")


@dataclass
class DemoRun:
    config: SchedConfig
    options: DemoOptions
    root: Path
    pipelines: list[dict[str, Any]]
    status: dict[str, Any]
    seconds: float
    relayed: dict[str, int]
    orchestrator_killed: bool = False
    killed_pipelines: list[int] = field(default_factory=list)
    hung: bool = False  # the scheduler stopped answering (W8: every Ray slot held by a blocked call)

    @property
    def traces(self) -> Path:
        return self.root / "traces"


def run_demo(config: SchedConfig, options: DemoOptions, root: Path,
             progress: Callable[[str], None] | None = None) -> DemoRun:
    """Run the pipelines to the end (or until they starve) on the Ray this process is connected
    to (a local one is started, and shut down after, if none is)."""
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False,
                 **gpu_resources(config))
    namespace = f"racefree-sched-{uuid.uuid4().hex[:8]}"
    created: list[Any] = []
    t0 = time.monotonic()
    try:
        orchestrator = ray.remote(Orchestrator).options(  # type: ignore[attr-defined]
            name=ORCHESTRATOR_NAME, namespace=namespace, max_restarts=0, num_cpus=0).remote(
            config.to_json(), str(root / "traces"), namespace, options.monitor)
        created.append(orchestrator)
        pids = ray.get(orchestrator.setup.remote([f"pipeline{i}" for i in range(config.pipelines)]), timeout=60)
        scheduler = ray.get_actor(SCHEDULER_NAME, namespace=namespace)
        created.append(scheduler)
        status = ray.get(scheduler.status.remote(), timeout=60)
        killed = False
        if options.kill_pipeline is not None and not 0 <= options.kill_pipeline < config.pipelines:
            raise ValueError(f"no pipeline {options.kill_pipeline} to kill")
        if options.kill_orchestrator:
            ray.kill(orchestrator, no_restart=True)
            _wait_gone(ORCHESTRATOR_NAME, namespace)
            scheduler = ray.get_actor(SCHEDULER_NAME, namespace=namespace)  # still reachable by name
            killed = True
        coordinator = ray.remote(Coordinator).options(namespace=namespace, num_cpus=0).remote(  # type: ignore[attr-defined]
            namespace, options.reorder, options.max_delay_s, options.seed, options.stale_clears)
        created.append(coordinator)
        workers = [ray.remote(PipelineWorker).options(  # type: ignore[attr-defined]
            namespace=namespace, max_concurrency=2, max_restarts=0, num_cpus=0).remote(
            pid, config.to_json(), asdict(options), namespace, coordinator, str(root / "logs")) for pid in pids]
        created += workers
        refs = [w.run.remote() for w in workers]
        killed_pipelines: list[int] = []
        if options.kill_pipeline is not None:  # kill_after_s into the train loops (the spec kills no init)
            _wait_for(lambda: not INIT_PCS & set(ray.get(scheduler.status.remote(), timeout=60)["pc"]), "the inits", 60)
            time.sleep(options.kill_after_s)
            ray.kill(workers[options.kill_pipeline], no_restart=True)
            remove_gpus_of(namespace, options.kill_pipeline)
            ray.get(scheduler.unregister_pipeline.remote(options.kill_pipeline), timeout=60)
            killed_pipelines.append(options.kill_pipeline)
        pending, hung = list(refs), False
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
            answer = _answer(scheduler.status.remote(), 1.0)  # a hung scheduler answers nothing
            status = answer or status
            if progress is not None:
                progress(f"sched {config.policy}: " + "  ".join(f"p{i} {pc}" for i, pc in enumerate(status["pc"]))
                         + f"  cycles {status['cycles']}" + ("" if answer else "  (the scheduler is not answering)"))
        results = [_result(ref, pid) for pid, ref in zip(pids, refs, strict=True)]
        relayed = ray.get(coordinator.drain.remote(5.0), timeout=60)
        final = _answer(scheduler.close.remote(), 30.0)
        hung, status = final is None, final or status
    finally:
        for actor in created:
            ray.kill(actor, no_restart=True)
        remove_gpus_of(namespace)  # on a shared Ray, the next run gets every GPU back
        if started_ray:
            ray.shutdown()
    return DemoRun(config, options, root, results, status, time.monotonic() - t0, relayed, killed, killed_pipelines,
                   hung)


def gpu_resources(config: SchedConfig) -> dict[str, Any]:
    """``ray.init`` arguments for a local cluster with the run's GPUs as ``config.gpu_resource``."""
    if config.gpu_resource == "GPU":
        return {"num_gpus": config.gpus}
    return {"resources": {config.gpu_resource: config.gpus}}


def ray_self() -> Any:
    """The handle of the actor this code runs in."""
    import ray

    return ray.get_runtime_context().current_actor


def gpu_prefix(namespace: str, pid: int | None = None) -> str:
    """The name prefix of the placement groups of a run's pipeline (None: of every pipeline)."""
    return f"{namespace}-pipeline" + ("" if pid is None else f"{pid}-")


def remove_gpus_of(namespace: str, pid: int | None = None) -> int:
    """The orchestrator's clean-up after killing a pipeline (None: at the end of the run): its
    placement groups (its engines' GPUs; a killed actor's are not removed with it, and a
    starved one may still hold ranks). Returns how many were removed."""
    import ray
    from ray._raylet import PlacementGroupID
    from ray.util import remove_placement_group
    from ray.util.placement_group import PlacementGroup

    ids = [pg_id for pg_id, v in ray.util.placement_group_table().items()
           if v["name"].startswith(gpu_prefix(namespace, pid)) and v["state"] != "REMOVED"]
    for pg_id in ids:
        remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(pg_id))))
    return len(ids)


def _answer(ref: Any, timeout: float) -> Any:
    """The call's result, or None if it is not answered within ``timeout`` seconds."""
    import ray

    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        return None


def _result(ref: Any, pid: int) -> dict[str, Any]:
    """A pipeline actor's stats; a killed actor's are what its death left (nothing)."""
    import ray

    try:
        return dict(ray.get(ref))
    except ray.exceptions.RayActorError as exc:
        stats = asdict(PipelineStats(pid))
        stats["error"] = f"the actor died: {type(exc).__name__}"
        return stats


def _wait_gone(name: str, namespace: str, timeout: float = 30.0) -> None:
    import ray

    def gone() -> bool:
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return True
        return False

    _wait_for(gone, f"actor {name} to stop resolving after it was killed", timeout)


def _wait_for(ready: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting {timeout:g} s for {what}")
        time.sleep(0.05)

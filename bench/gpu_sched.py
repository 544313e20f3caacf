"""GPU scheduler benchmark: a request's round trip through the scheduler actor, and planning cost.

    python bench/gpu_sched.py            # round trips on a local Ray; planning at 8 pipelines x 64 GPUs
    python bench/gpu_sched.py --quick    # fewer repetitions

Round trip: one pipeline (fenced, 2 GPUs) runs rollouts against the scheduler actor; each
rollout's ``request("train")`` is timed from the caller: the call, the machine's ``req_train``,
the planning task woken, one cycle (plan, moves, commit) and the grant. The baseline, in the
same run and the same Ray, is a call of the same actor's ``ping`` (an ``async def`` that does
nothing): the bare Ray actor round trip.

Planning: ``SchedulerCore.cycle()`` in this process with NP pipelines and NG GPUs (the
generated machine at those sizes plus the gap-ratio planner), in a state where every pipeline
has just signalled demand, so each cycle hands out GPUs; median over the cycles of many runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from racefree.runtime.gpu_sched import SchedConfig, SchedulerCore


def round_trips(n: int) -> tuple[float, float]:
    """(median ms of request("train") -> grant, median ms of a bare actor call), same Ray, same run."""
    import ray
    from racefree.runtime.gpu_sched.actor import start_scheduler
    from racefree.runtime.gpu_sched.handle import PipelineHandle

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ns = f"bench-sched-{time.monotonic_ns()}"
    sched = start_scheduler(SchedConfig(pipelines=1, gpus=2, rollouts=n + 1, poll_s=1.0), namespace=ns)

    async def run() -> tuple[list[float], list[float]]:
        pid = await sched.register_pipeline.remote("bench")
        await sched.admit_pipeline.remote(pid)
        h = PipelineHandle(sched, pid, policy="fenced")
        await h.init()
        grants, pings = [], []
        for r in range(n + 1):
            await h.signal(5)
            await h.dispatch()
            await sched.deliver_many.remote(pid, [("begin", r)])
            await h.served(5)
            await sched.deliver_many.remote(pid, [("done", r), ("clear", r)])
            t = time.perf_counter()
            await h.request("train", 5)
            grants.append(time.perf_counter() - t)
            t = time.perf_counter()
            await sched.ping.remote()
            pings.append(time.perf_counter() - t)
            await h.release("train")
        return grants[1:], pings[1:]  # the first of each warms up

    try:
        grants, pings = asyncio.run(run())
    finally:
        ray.kill(sched, no_restart=True)
        if started:
            ray.shutdown()
    return statistics.median(grants) * 1e3, statistics.median(pings) * 1e3


def planning(pipelines: int, gpus: int, runs: int) -> tuple[float, float, int]:
    """(median ms per cycle that hands out GPUs, median ms of it in the gap-ratio planner, cycles
    measured) at NP x NG; the rest of a cycle is the generated machine (plan, moves, commit)."""
    config = SchedConfig(pipelines=pipelines, gpus=gpus, rollouts=2)
    times: list[float] = []
    in_planner: list[float] = []
    for _ in range(runs):
        core = SchedulerCore(config)
        core._planned_moves = _timed(core._planned_moves, in_planner)  # type: ignore[method-assign]
        for p in range(pipelines):  # every init, each granted by a cycle
            for kind in ("train_init", "infer_init"):
                core.request(p, kind)
                core.cycle()
                core.release(p, kind)
        for p in range(pipelines):  # every pipeline signals; each cycle plans for the pending ones
            core.request(p, "gen")
            del in_planner[len(times):]
            t = time.perf_counter()
            core.cycle()
            times.append(time.perf_counter() - t)
            assert not core.waiting(p), core.pc(p)
    return statistics.median(times) * 1e3, statistics.median(in_planner) * 1e3, len(times)


def _timed(fn: Callable[[], list[tuple[int, int]]], into: list[float]) -> Callable[[], list[tuple[int, int]]]:
    def timed() -> list[tuple[int, int]]:
        t = time.perf_counter()
        out = fn()
        into.append(time.perf_counter() - t)
        return out

    return timed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n = 30 if args.quick else 200
    grant_ms, ping_ms = round_trips(n)
    print(f"request -> grant through the scheduler actor: {grant_ms:.2f} ms; bare actor call: {ping_ms:.2f} ms; "
          f"ratio {grant_ms / ping_ms:.2f}x (target <= 1.5x), median of {n}")
    for np_, ng in ((2, 4), (8, 64)):
        ms, planner_ms, cycles = planning(np_, ng, 3 if args.quick else 10)
        print(f"planning {np_} pipelines x {ng} GPUs: {ms:.3f} ms per cycle, {planner_ms:.3f} ms of it in the "
              f"gap-ratio planner (median of {cycles}; target <= 1 ms at 8 x 64)")


if __name__ == "__main__":
    main()

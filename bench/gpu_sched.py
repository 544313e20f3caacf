"""GPU scheduler benchmark: a request's round trip through the scheduler actor, and planning cost.

    python bench/gpu_sched.py            # round trips on a local Ray; planning at 8 pipelines x 64 GPUs
    python bench/gpu_sched.py --quick    # fewer repetitions

Round trip: one pipeline (fenced, 2 GPUs) runs rollouts against the scheduler actor; each
rollout's ``request("train")`` is timed from the caller: the call, the machine's ``req_train``,
the planning task woken, one cycle (plan, moves, commit) and the grant. The baseline, in the
same run and the same Ray, is a call of the same actor's ``ping`` (an ``async def`` that does
nothing): the bare Ray actor round trip.

Planning: ``SchedulerCore.cycle()`` in this process with NP pipelines and NG GPUs (the
generated machine at those sizes plus the gap-ratio planner), two ways:
- **steady**: the pipelines run their train loops (signal, dispatch, reports, serve, train,
  release), and every cycle that runs is timed: the cycles a scheduler actually runs;
- **rebalance**: from an idle pool, every pipeline signals in turn, so each cycle hands a share
  of the whole pool over, one GPU per move (the first takes all 64): the expensive kind.
Medians over the cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from racefree.runtime.gpu_sched import SchedConfig, SchedulerCore


def round_trips(n: int) -> tuple[float, float, float]:
    """(median ms of request("train") -> grant, of a bare actor call, of a bare call with the
    request's arguments), same Ray, same run."""
    import ray
    from racefree.runtime.gpu_sched.actor import start_scheduler
    from racefree.runtime.gpu_sched.handle import PipelineHandle

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ns = f"bench-sched-{time.monotonic_ns()}"
    sched = start_scheduler(SchedConfig(pipelines=1, gpus=2, rollouts=n + 1, poll_s=1.0), namespace=ns)

    async def run() -> tuple[list[float], list[float], list[float]]:
        pid = await sched.register_pipeline.remote("bench")
        await sched.admit_pipeline.remote(pid)
        h = PipelineHandle(sched, pid, policy="fenced")
        await h.init()
        grants, pings, with_args = [], [], []
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
            t = time.perf_counter()
            await sched.ping.remote(pid, "train", 5.0)
            with_args.append(time.perf_counter() - t)
            await h.release("train")
        return grants[1:], pings[1:], with_args[1:]  # the first of each warms up

    try:
        grants, pings, with_args = asyncio.run(run())
    finally:
        ray.kill(sched, no_restart=True)
        if started:
            ray.shutdown()
    return tuple(statistics.median(x) * 1e3 for x in (grants, pings, with_args))  # type: ignore[return-value]


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


def steady(pipelines: int, gpus: int, rollouts: int) -> dict[str, float]:
    """Median ms per cycle of the train loops at NP x NG (and of its machine steps, its planner),
    median moves per cycle, and the number of cycles timed."""
    core = SchedulerCore(SchedConfig(pipelines=pipelines, gpus=gpus, rollouts=rollouts + 1))
    spent = {"machine": 0.0, "planner": 0.0}
    for name in ("plan", "move", "commit"):
        setattr(core.m, name, _adding(getattr(core.m, name), spent, "machine"))
    core._planned_moves = _adding(core._planned_moves, spent, "planner")  # type: ignore[method-assign]
    rows: list[tuple[float, float, float, int]] = []

    def settle() -> None:
        while True:
            spent.update(machine=0.0, planner=0.0)
            moves = core.stats.moves
            t = time.perf_counter()
            if not core.cycle():
                return
            rows.append((time.perf_counter() - t, spent["machine"], spent["planner"], core.stats.moves - moves))

    def grant(p: int, kind: str) -> None:
        core.request(p, kind)
        settle()
        assert not core.waiting(p), (p, kind, core.pc(p))

    for p in range(pipelines):
        for kind in ("train_init", "infer_init"):
            grant(p, kind)
            core.release(p, kind)
            settle()
    rows.clear()  # the loops' cycles only
    for r in range(rollouts):
        for p in range(pipelines):
            grant(p, "gen")
            core.dispatch(p)
            core.deliver(p, "begin", r)
            settle()
        for p in range(pipelines):
            assert core.serve(p), core.pc(p)
            core.deliver(p, "done", r)
            core.deliver(p, "clear", r)
            grant(p, "train")
            core.release(p, "train")
            settle()
    cols = list(zip(*rows, strict=True))
    return {"ms": statistics.median(cols[0]) * 1e3, "machine_ms": statistics.median(cols[1]) * 1e3,
            "planner_ms": statistics.median(cols[2]) * 1e3, "moves": statistics.median(cols[3]),
            "cycles": len(rows)}


def _adding(fn: Callable[..., Any], into: dict[str, float], key: str) -> Callable[..., Any]:
    def timed(*args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            into[key] += time.perf_counter() - t

    return timed


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
    grant_ms, ping_ms, args_ms = round_trips(n)
    print(f"request -> grant through the scheduler actor: {grant_ms:.2f} ms; bare actor call: {ping_ms:.2f} ms; "
          f"ratio {grant_ms / ping_ms:.2f}x (target <= 1.5x), median of {n}; a bare call with the request's "
          f"arguments: {args_ms:.2f} ms ({grant_ms / args_ms:.2f}x)")
    for np_, ng in ((2, 4), (8, 64)):
        st = steady(np_, ng, 2 if args.quick else 5)
        print(f"steady {np_} pipelines x {ng} GPUs: {st['ms']:.3f} ms per cycle ({st['machine_ms']:.3f} ms machine, "
              f"{st['planner_ms']:.3f} ms planner, {st['moves']:g} moves; median of {st['cycles']}; "
              "target <= 1 ms at 8 x 64)")
        ms, planner_ms, cycles = planning(np_, ng, 3 if args.quick else 10)
        print(f"rebalance {np_} pipelines x {ng} GPUs: {ms:.3f} ms per cycle, {planner_ms:.3f} ms of it in the "
              f"gap-ratio planner (median of {cycles})")


if __name__ == "__main__":
    main()

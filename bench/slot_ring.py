"""Slot-ring transport benchmark: the fenced transport against a raw UCXX send/recv loop.

    python bench/slot_ring.py            # 64 KiB, 1 MiB, 16 MiB, 64 MiB payloads
    python bench/slot_ring.py --quick    # fewer payloads per size

Two processes over UCXX TCP loopback (``UCX_TLS=tcp``), the same sizes, the same run:

- **raw**: the server process answers each 40-byte request with one ``ep.send`` of a
  preallocated buffer of the size; the client receives into a preallocated buffer. The least a
  pull transport can do: one request, one payload.
- **fenced**: a ``SlotRing`` (fenced, 4 slots) with its ``SlotServer`` in the server process and
  a writer thread that writes the next payload into each slot as soon as it is FREE (the
  stamp only: the writer's copy into shared memory is the rollout's cost, not the
  transport's; the ring's pages are faulted in first, as in a rollout process that has written
  every slot); the client process pulls every payload with ``SlotClient.fetch``: REQ, the
  ring's accept (a machine transition under the ring lock), OK, the slot's bytes zero-copy, the
  consume CAS, COMMIT and the stamp check, receiving into one buffer of the client's (``out``,
  as raw does; a retry would get a fresh one). No tracing.

Reported per size: payloads/s and GB/s of each, the fenced/raw throughput ratio, and the time
fenced adds per payload (µs): the control records and the machine's transitions.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from typing import Any

os.environ.setdefault("UCX_TLS", "tcp")
os.environ.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")

import numpy as np  # noqa: E402

SIZES = [(64 << 10, "64 KiB"), (1 << 20, "1 MiB"), (16 << 20, "16 MiB"), (64 << 20, "64 MiB")]
if os.environ.get("BENCH_SIZES"):
    SIZES = [s for s in SIZES if s[1] in os.environ["BENCH_SIZES"].split(",")]


def _count(size: int, quick: bool) -> int:
    base = {64 << 10: 3000, 1 << 20: 400, 16 << 20: 40, 64 << 20: 12}[size]
    return max(4, base // 4) if quick else base


# ---------------------------------------------------------------- raw ucxx


def _raw_server(size: int, port_q: Any, done: Any) -> None:
    import ucxx

    payload = np.ones(size, dtype=np.uint8)

    async def handler(ep: Any) -> None:
        req = np.empty(5, dtype=np.int64)
        try:
            while True:
                await ep.recv(req)
                await ep.send(payload)
        except Exception:  # noqa: BLE001 - the client closed
            pass

    async def main() -> None:
        lst = ucxx.create_listener(handler, port=0)
        port_q.put(lst.port)
        while not done.is_set():
            await asyncio.sleep(0.05)
        lst.close()

    asyncio.run(main())


async def _raw_client(port: int, size: int, n: int) -> float:
    import ucxx

    ep = await ucxx.create_endpoint("127.0.0.1", port)
    req = np.zeros(5, dtype=np.int64)
    buf = np.empty(size, dtype=np.uint8)
    buf[:] = 0
    await ep.send(req)
    await ep.recv(buf)  # warm-up
    t = time.perf_counter()
    for _ in range(n):
        await ep.send(req)
        await ep.recv(buf)
    elapsed = time.perf_counter() - t
    await ep.close()
    return elapsed


# ---------------------------------------------------------------- fenced transport


def _fenced_server(size: int, n: int, ref_q: Any, done: Any) -> None:
    from racefree.runtime.slot_ring import RingConfig, SlotRing, SlotServer
    from racefree.runtime.slot_ring.wire import OVERHEAD

    cfg = RingConfig(policy="fenced", slots=4, slot_bytes=size + OVERHEAD, deadline_s=30.0)
    ring = SlotRing(cfg)
    ring.data[:] = 1  # fault the ring's pages in, as a running rollout process has written every slot
    server = SlotServer(ring, ports=1)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)[0]
    m: Any = ring.machine
    for _ in range(n + 1):  # the first is the client's warm-up
        while m.st[int(m.widx)] != 0:  # backpressure: only a FREE slot is written (no overwrite)
            time.sleep(0.001)
        w = ring.write(fill=lambda body: size)
        ref_q.put((port, w.slot, w.gen, w.nbytes))
    done.wait()
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    ring.close()


async def _fenced_client(ref_q: Any, n: int) -> float:
    from racefree.runtime.slot_ring import Ref, RingConfig, SlotClient

    first = ref_q.get()
    cfg = RingConfig(policy="fenced", slots=4, slot_bytes=64, deadline_s=30.0)
    client = SlotClient(cfg)
    await client.connect("127.0.0.1", [first[0]])
    out = np.zeros(first[3], dtype=np.uint8)  # the trainer's receive buffer, as raw's
    await client.fetch(Ref("127.0.0.1", (first[0],), *first[1:]), out)  # warm-up
    t = time.perf_counter()
    for _ in range(n):  # the writer stays at most a ring ahead: references arrive as slots free
        port, slot, gen, nbytes = ref_q.get()
        await client.fetch(Ref("127.0.0.1", (port,), slot, gen, nbytes), out)
    elapsed = time.perf_counter() - t
    await client.close()
    return elapsed


# ---------------------------------------------------------------- runs


def raw_time(size: int, n: int) -> float:
    ctx = mp.get_context("spawn")
    port_q, done = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_raw_server, args=(size, port_q, done))
    p.start()
    try:
        return asyncio.run(_raw_client(port_q.get(timeout=60), size, n))
    finally:
        done.set()
        p.join(30)


def fenced_time(size: int, n: int) -> float:
    ctx = mp.get_context("spawn")
    ref_q, done = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_fenced_server, args=(size, n, ref_q, done))
    p.start()
    try:
        return asyncio.run(_fenced_client(ref_q, n))
    finally:
        done.set()
        p.join(30)


def measure(size: int, n: int, reps: int) -> tuple[float, float]:
    """Median seconds of raw and fenced for n payloads, interleaved over reps."""
    raw, fenced = [], []
    for _ in range(reps):
        raw.append(raw_time(size, n))
        fenced.append(fenced_time(size, n))
    return statistics.median(raw), statistics.median(fenced)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    print(f"UCX_TLS={os.environ['UCX_TLS']}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("| payload | n | raw payloads/s | raw GB/s | fenced payloads/s | fenced GB/s | fenced / raw | added per payload |")
    print("|---|---|---|---|---|---|---|---|")
    for size, label in SIZES:
        n = _count(size, a.quick)
        raw, fenced = measure(size, n, 1 if a.quick else a.reps)
        print(f"| {label} | {n} | {n / raw:,.0f} | {n * size / raw / 1e9:.3f} | {n / fenced:,.0f} | "
              f"{n * size / fenced / 1e9:.3f} | {raw / fenced:.0%} | {(fenced - raw) / n * 1e6:,.0f} µs |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

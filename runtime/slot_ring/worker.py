"""One process of a slot-ring run: ``python -m racefree.runtime.slot_ring.worker writer|trainer ...``.

The writer process owns the ring: its main thread writes payloads at a rate and publishes each
payload's reference (one JSON line in ``refs.jsonl``, as upstream publishes on a Redis stream);
the UCXX server runs on an event loop in a second thread, as upstream's server threads do.
Trainer ``i`` of ``C`` pulls the references whose generation is ``i`` mod ``C`` (each reference
has one claimant) and checks what it got against the payload's stamp, to count what the policy
let through. Each process writes its JSONL events and, at exit, a stats file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .client import ClientFaults, Ref, SlotClient
from .config import RingConfig
from .errors import PayloadLost
from .ring import SlotRing
from .server import Faults, SlotServer, ucx_env
from .trace import SpecTrace
from .wire import stamped_gen

HOST = "127.0.0.1"
REFS = "refs.jsonl"
PORTS = "ports.json"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def fill_payload(body: np.ndarray, gen: int, nbytes: int) -> int:
    """The writer's payload: ``nbytes`` of data whose every word says its generation (so a torn
    copy shows); the bytes used."""
    n = min(nbytes, len(body)) // 8 * 8
    body[:n].view(np.int64)[:] = gen
    return n


def _wait_for_trainers(run: Path, clients: int, stop: threading.Event, timeout: float = 60.0) -> None:
    """Start writing once every trainer is up (its UCXX context made), so the run measures the
    transport, not process start-up."""
    until = time.monotonic() + timeout
    while len(list(run.glob("ready-trainer*"))) < clients and time.monotonic() < until and not stop.is_set():
        time.sleep(0.02)


def run_writer(cfg: RingConfig, faults: Faults, run: Path, payloads: int, rate: float, payload_bytes: int,
               ports: int, clients: int) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # flushed per event: the demo may kill this process, and its events are what the replay needs
    trace = SpecTrace(cfg.spec_machine, run / "traces", "writer", flush_each=True)
    ring = SlotRing(cfg, trace)
    server = SlotServer(ring, ports=ports, faults=faults)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="slot-ring-server", daemon=True)
    thread.start()
    stats: dict[str, Any] = {"actor": "writer", "written": 0, "refused": [], "overwritten": [], "bytes": 0}
    try:
        bound = asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        _write_json(run / PORTS, bound)
        _wait_for_trainers(run, clients, stop)
        (run / "ready-writer").touch()  # writing starts (the demo's clock for --kill-server-after)
        period = 1.0 / rate if rate > 0 else 0.0
        started = time.monotonic()
        with open(run / REFS, "a", encoding="utf-8") as refs:
            for i in range(payloads):
                if stop.is_set():
                    break
                if period:
                    delay = started + i * period - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                gen = int(ring.machine.next)  # type: ignore[attr-defined] - only this thread writes
                w = ring.write(fill=lambda body, g=gen: fill_payload(body, g, payload_bytes))
                stats["written"] += 1
                if w.refused:
                    stats["refused"].append(w.gen)
                    continue
                if w.overwritten:
                    stats["overwritten"].append(w.overwritten)
                stats["bytes"] += w.nbytes
                assert w.slot is not None
                refs.write(json.dumps(Ref(HOST, tuple(bound), w.slot, w.gen, w.nbytes).to_json()) + "\n")
                refs.flush()
            refs.write("null\n")
        stop.wait()  # the demo stops the writer once every trainer is done
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        stats["server"] = asdict(server.stats)
        stats["reclaimed"] = ring.reclaimed
        ring.close()
        trace.close()
        _write_json(run / "stats-writer.json", stats)
    return 0


def _refs(path: Path, index: int, clients: int, stop_at: float) -> Any:
    """Yield this trainer's references from the writer's file as they appear."""
    pos = 0
    buf = ""
    while time.monotonic() < stop_at:
        try:
            with open(path, encoding="utf-8") as fh:
                fh.seek(pos)
                chunk = fh.read()
                pos = fh.tell()
        except FileNotFoundError:
            chunk = ""
        buf += chunk
        *lines, buf = buf.split("\n")
        for line in lines:
            try:
                v = json.loads(line)
            except json.JSONDecodeError:  # empty, or cut short by a killed writer
                continue
            if v is None:
                return
            ref = Ref.from_json(v)
            if ref.gen % clients == index:
                yield ref
        if not lines:
            time.sleep(0.005)


async def run_trainer(cfg: RingConfig, faults: ClientFaults, run: Path, index: int, clients: int,
                      timeout: float) -> int:
    trace = SpecTrace(cfg.spec_machine, run / "traces", f"trainer{index}")
    client = SlotClient(cfg, client=index, clients=clients, trace=trace, faults=faults)
    stats: dict[str, Any] = {"actor": f"trainer{index}", "delivered": [], "torn": [], "received": [], "lost": [],
                             "bytes": 0, "seconds": 0.0}
    until = time.monotonic() + timeout
    while not (run / PORTS).exists() and time.monotonic() < until:
        await asyncio.sleep(0.02)
    if (run / PORTS).exists():  # connect before the writer starts: the run measures the transport
        await client.connect(HOST, json.loads((run / PORTS).read_text()))
    (run / f"ready-trainer{index}").touch()
    started = time.monotonic()
    progress = run / f"progress-trainer{index}"
    try:
        for ref in _refs(run / REFS, index, clients, started + timeout):
            try:
                p = await client.fetch(ref)
            except PayloadLost as exc:
                stats["lost"].append([exc.gen, exc.reason])
            else:
                got = stamped_gen(p.buf)
                intact = got == ref.gen and bool((p.body.view(np.int64) == ref.gen).all())
                stats["received"].append(got if got is not None else -1)
                stats["delivered" if intact else "torn"].append(ref.gen)
                stats["bytes"] += len(p.buf)
            progress.write_text(str(len(stats["delivered"]) + len(stats["torn"]) + len(stats["lost"])))
    finally:
        stats["seconds"] = time.monotonic() - started
        stats["client"] = asdict(client.stats)
        stats["attempts"] = client.stats.attempts
        await client.close()
        trace.close()
        _write_json(run / f"stats-trainer{index}.json", stats)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="racefree.runtime.slot_ring.worker")
    ap.add_argument("role", choices=["writer", "trainer"])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--config", required=True, help="RingConfig as JSON")
    ap.add_argument("--faults", default="{}", help="Faults (writer) or ClientFaults (trainer) as JSON")
    ap.add_argument("--payloads", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.0, help="payloads per second (0: as fast as the ring takes them)")
    ap.add_argument("--payload-bytes", type=int, default=1 << 16)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args(argv)
    ucx_env()
    cfg = RingConfig(**json.loads(a.config))
    if a.role == "writer":
        return run_writer(cfg, Faults(**json.loads(a.faults)), a.run, a.payloads, a.rate, a.payload_bytes, a.ports,
                          a.clients)
    return asyncio.run(run_trainer(cfg, ClientFaults(**json.loads(a.faults)), a.run, a.index, a.clients, a.timeout))


if __name__ == "__main__":
    sys.exit(main())

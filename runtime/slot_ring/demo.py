"""``racefree demo slots``: a writer process and C trainer processes over UCXX loopback, faults
injected, then every process's events replayed through slot_ring.rf.

The report counts what the policy let through, from what the trainers actually received (each
payload's words all say its generation): ``torn`` deliveries (bytes that are not the
reference's own generation, whole), ``duplicates`` (a generation's bytes delivered more than
once), ``lost_recorded`` (refused or overwritten by the writer, answered STALE, or out of
attempts: in the loss ledger) and ``lost_silent`` (neither delivered nor in the ledger).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .client import ClientFaults
from .config import RingConfig
from .server import Faults
from .trace import replay_consts


@dataclass(frozen=True)
class SlotsOptions:
    clients: int = 2
    payloads: int = 200
    rate: float = 100.0         # payloads/s (0: as fast as the ring takes them)
    payload_bytes: int = 1 << 16
    ports: int = 2
    timeout_s: float = 120.0    # the whole run
    faults: Faults = Faults()
    client_faults: ClientFaults = ClientFaults()
    kill_writer_after_s: float = 0.0  # SIGKILL the writer (ring and server) this long into the run (0: never)


@dataclass
class SlotsRun:
    config: RingConfig
    options: SlotsOptions
    root: Path
    seconds: float
    stats: list[dict[str, Any]]
    exit_codes: dict[str, int | None]
    stderr: dict[str, str]
    writer_killed: bool = False

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    def writer(self) -> dict[str, Any]:
        return next((s for s in self.stats if s["actor"] == "writer"), {})

    def trainers(self) -> list[dict[str, Any]]:
        return [s for s in self.stats if s["actor"].startswith("trainer")]

    def failed_workers(self) -> dict[str, str]:
        return {name: (self.stderr.get(name, "").strip().splitlines() or [f"exit {code}"])[-1]
                for name, code in self.exit_codes.items()
                if code != 0 and not (name == "writer" and self.writer_killed)}

    def published(self) -> set[int]:
        """The generations whose reference was published (all a trainer can know of)."""
        path = self.root / "refs.jsonl"
        gens = set()
        for line in path.read_text().splitlines() if path.exists() else []:
            with contextlib.suppress(ValueError, TypeError, IndexError):  # the null, or a line cut by a kill
                gens.add(int(json.loads(line)[3]))
        return gens

    def counts(self) -> dict[str, int]:
        w, ts = self.writer(), self.trainers()
        # a killed writer leaves no stats: its payloads are those it published (the others, refused
        # or never announced, died with it and no trainer could know of them)
        gens = set(range(1, int(w["written"]) + 1)) if w else self.published()
        delivered = {g for t in ts for g in t["delivered"]}
        received = Counter(g for t in ts for g in t["received"] if g > 0)
        ledger = set(w.get("refused", [])) | set(w.get("overwritten", [])) | {g for t in ts for g, _ in t["lost"]}
        return {
            "payloads_written": len(gens),
            "delivered": sum(len(t["delivered"]) for t in ts),
            "torn": sum(len(t["torn"]) for t in ts),
            "duplicates": sum(n - 1 for n in received.values() if n > 1),
            "lost_recorded": len(ledger - delivered),
            "lost_silent": len(gens - delivered - ledger),
            "bytes": sum(int(t["bytes"]) for t in ts),
        }

    def replay_consts(self) -> dict[str, int]:
        attempts = max((int(t.get("attempts", 0)) for t in self.trainers()), default=1)
        # the writes the writer's trace holds (a killed writer's trace is flushed event by event)
        writes = sum(text.count('"action":"write"') for text in
                     (p.read_text() for p in self.traces.glob("writer-*.jsonl")))
        return replay_consts(self.config.slots, writes,
                             attempts * self.options.clients, self.options.clients, self.config.attempts)


def run_slots(config: RingConfig, root: Path, options: SlotsOptions,
              progress: Callable[[str], None] | None = None) -> SlotsRun:
    """Start the writer and the trainers in ``root``, wait for the trainers, stop the writer."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "traces").mkdir(exist_ok=True)
    common = ["--run", str(root), "--config", json.dumps(config.to_json()), "--payloads", str(options.payloads),
              "--rate", str(options.rate), "--payload-bytes", str(options.payload_bytes), "--ports", str(options.ports),
              "--clients", str(options.clients), "--timeout", str(options.timeout_s)]
    env = {**os.environ, "UCX_TLS": os.environ.get("UCX_TLS", "tcp"), "UCX_WARN_UNUSED_ENV_VARS": "n"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    errs: dict[str, Any] = {}

    def start(name: str, argv: list[str]) -> None:
        errs[name] = open(root / f"{name}.stderr", "wb")  # noqa: SIM115 - closed below
        procs[name] = subprocess.Popen([sys.executable, "-m", "racefree.runtime.slot_ring.worker", *argv, *common],
                                       stdout=subprocess.DEVNULL, stderr=errs[name], env=env)

    started = time.monotonic()
    killed = False
    try:
        start("writer", ["writer", "--faults", json.dumps(asdict(options.faults))])
        for i in range(options.clients):
            start(f"trainer{i}", ["trainer", "--index", str(i), "--faults", json.dumps(asdict(options.client_faults))])
        deadline = started + options.timeout_s + 10
        trainers = [n for n in procs if n != "writer"]
        while time.monotonic() < deadline and any(procs[n].poll() is None for n in trainers):
            kill_at = options.kill_writer_after_s
            if kill_at and not killed and (root / "ready-writer").exists() \
                    and time.time() - (root / "ready-writer").stat().st_mtime >= kill_at:
                procs["writer"].kill()  # by its pid: a process this run started
                procs["writer"].wait()
                killed = True
            if procs["writer"].poll() is not None:  # the writer is gone: no more references will come
                with open(root / "refs.jsonl", "a", encoding="utf-8") as refs:
                    refs.write("\nnull\n")
                break
            if progress is not None:
                progress(_progress_line(root, options))
            time.sleep(0.2)
        if procs["writer"].poll() is None:
            procs["writer"].send_signal(signal.SIGTERM)
    finally:
        for name, p in procs.items():
            try:
                p.wait(timeout=15 if name == "writer" else max(1.0, started + options.timeout_s + 15 - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()  # only processes this run started, by their pid
                p.wait()
        for fh in errs.values():
            fh.close()
    stats = [json.loads(p.read_text()) for p in sorted(root.glob("stats-*.json"))]
    stderr = {n: (root / f"{n}.stderr").read_text(errors="replace")[-2000:] for n in procs}
    return SlotsRun(config, options, root, time.monotonic() - started, stats,
                    {n: p.returncode for n, p in procs.items()}, stderr, writer_killed=killed)


def _progress_line(root: Path, options: SlotsOptions) -> str:
    done = 0
    for p in root.glob("progress-trainer*"):
        with contextlib.suppress(OSError, ValueError):
            done += int(p.read_text() or 0)
    return f"{done}/{options.payloads} payloads pulled"

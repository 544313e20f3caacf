"""The orchestrator: its main loop ships batches, its poll task asks the readers to load weights.

As in prime-rl these are two concurrent loops (two threads here, each with its own
store and trace file). Which step to load, whether a batch may ship, when the load is
complete: all are guards of the generated machine. The adapters only do the I/O:
write the batch file, (in the upstream policies) ``mkdir -p step_t`` + ``NCCL_READY``
before asking, and write ``LOADED_STEP`` (tmp + fsync + replace) after a load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .common import POLL_S, Deadline, Stats, run_over
from .files import touch, write_atomic, write_json
from .store import ProtocolStore


class Shipper:
    """The main loop: ``generate_batch(s)`` takes ``rollout_s``, then ships if the machine allows."""

    def __init__(self, store: ProtocolStore, *, rollout_s: float = 0.0, stats: Stats | None = None) -> None:
        self.store, self.rollout_s = store, rollout_s
        self.stats = stats or Stats("orchestrator-ship")

    def run(self, deadline: Deadline) -> None:
        while True:
            snap = self.store.peek()
            deadline.check("the orchestrator's next batch", self.store.seq)
            if snap.crashed or snap.s >= self.store.config.steps:
                return
            if not self.store.machine.enabled("ship"):
                time.sleep(POLL_S)  # waits on checkpoint_ready (and, fenced, on c >= s - A)
                continue
            time.sleep(self.rollout_s)
            with self.store.transaction() as m:
                if m.enabled("ship"):
                    s = m.snapshot().s
                    m.ship()
                    write_atomic(self.store.layout.rollouts / f"batch_{s}", str(s).encode(), durable=False)


class Poller:
    """The poll task: pick the target the machine allows, ask the readers, record the load."""

    def __init__(self, store: ProtocolStore, *, stats: Stats | None = None) -> None:
        self.store = store
        self.layout = store.layout
        self.marker = store.config.policy != "pre_fix"
        self.fenced = store.config.policy == "fenced"
        self.stats = stats or Stats("orchestrator-poll")

    def run(self, deadline: Deadline) -> None:
        while True:
            snap = self.store.peek()
            deadline.check("the orchestrator's poll task", self.store.seq)
            if snap.crashed:
                return
            state = snap.poll.name
            if state == "IDLE":
                if run_over(self.store, snap):
                    return
                self.step(self.start)
            elif state == "WAITING":
                self.step(lambda m: m.wait_done() if m.enabled("wait_done") else None)
            elif state == "SEND":
                self.step(self.send)
            elif state == "LOAD" and snap.rd.name == "OK":
                self.step(self.done)
            elif snap.rd.name == "FAILED":
                self.step(lambda m: m.load_failed() if m.enabled("load_failed") else None)
                return  # gather raised: the poll task dies and the run crashes
            elif state == "RECORD":
                self.step(lambda m: m.record())
            else:
                time.sleep(POLL_S)

    def step(self, body: Callable[[Any], object]) -> None:
        with self.store.transaction() as m:
            before = self.store.committed
            body(m)
        if self.store.committed == before:
            time.sleep(POLL_S)

    def start(self, m: Any) -> None:
        targets = [args[0] for a, args in m.enabled_instances() if a == "poll_start"]
        if targets:
            m.poll_start(max(targets))  # the guard pins t; max is the only one

    def send(self, m: Any) -> None:
        m.send()
        if not self.fenced:  # update_weights: mkdir -p step_t, touch NCCL_READY (resurrects a deleted step)
            t = m.snapshot().ptgt
            folder = self.layout.step(t)
            folder.mkdir(exist_ok=True)
            touch(folder / "NCCL_READY")

    def done(self, m: Any) -> None:
        m.load_done()
        snap = m.snapshot()
        if self.marker and snap.LS is not None:
            write_json(self.layout.marker, {"epoch": snap.lsEpoch, "step": snap.LS})
        self.stats.loads_ok += 1

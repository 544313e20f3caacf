"""The orchestrator: its main loop ships batches, its poll task asks the readers to load weights.

As in prime-rl these are two concurrent loops (two threads here, each with its own
store and trace file). Which step to load, whether a batch may ship, when the load is
complete: all are guards of the generated machine. The adapters only do the I/O:
write the batch file, (in the upstream policies) ``mkdir -p step_t`` + ``NCCL_READY``
before asking, and write ``LOADED_STEP`` (tmp + fsync + replace) after a load.

Fenced, the poll task also keeps the readers' leases: a reader that stopped renewing its
lease is evicted by the machine's ``evict`` (``lease.py``), so a dead reader never holds
up a load, and a fan-out waits only for the readers that hold weights of this run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .common import POLL_S, Deadline, Stats, run_over
from .errors import BadFile
from .files import int_field, read_json, touch, write_atomic, write_json
from .lease import Leases
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
            if self.store.config.fenced:
                if snap.finished:
                    return  # the trainer wants no more batches
            elif snap.crashed or snap.s >= self.store.config.steps:
                return
            if not self.store.machine.enabled("ship"):
                time.sleep(POLL_S)  # waits on checkpoint_ready (and, fenced, on c >= s - A)
                continue
            time.sleep(self.rollout_s)
            with self.store.transaction() as m:
                if m.enabled("ship"):
                    s = self.store.absolute(m.snapshot().s)
                    m.ship()
                    write_atomic(self.store.layout.rollouts / f"batch_{s}", str(s).encode(), durable=False)


class Poller:
    """The poll task: pick the target the machine allows, ask the readers, record the load."""

    def __init__(self, store: ProtocolStore, *, stats: Stats | None = None) -> None:
        self.store = store
        self.layout = store.layout
        self.config = store.config
        self.marker = self.config.policy != "pre_fix"
        self.fenced = self.config.fenced
        self.stats = stats or Stats("orchestrator-poll")
        self.leases = Leases(self.layout.consumers, self.config.lease_s)
        self._fanout_since: float | None = None  # fenced: when the current fan-out began

    def run(self, deadline: Deadline) -> None:
        if self.fenced:
            self.check_marker()
        while True:
            snap = self.store.peek()
            deadline.check("the orchestrator's poll task", self.store.seq)
            if self.fenced:
                self.evict_expired(snap)
            elif snap.crashed:
                return
            state = snap.poll.name
            if state == "IDLE":
                if run_over(self.store, snap):
                    return
                self.step(self.start)
            elif state == "WAITING":
                self.step(self.wait)
            elif state == "SEND":
                self.step(self.send)
            elif state == "LOAD" and (self.store.machine.enabled("load_done") if self.fenced else snap.rd.name == "OK"):
                self.step(self.done)
            elif state == "LOAD" and self.fenced and self.store.machine.enabled("load_abort"):
                self.step(lambda m: m.load_abort())  # every reader failed or left: nothing was loaded
            elif not self.fenced and snap.rd.name == "FAILED":
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
        if self.fenced and m.enabled("resume_load"):
            m.resume_load()  # after a resume, the resume base first
            return
        targets = [args[0] for a, args in m.enabled_instances() if a == "poll_start"]
        if targets:
            m.poll_start(max(targets))  # the guard pins t; max is the only one

    def wait(self, m: Any) -> None:
        if m.enabled("wait_done"):
            m.wait_done()
        elif self.fenced and m.enabled("wait_cancel"):
            m.wait_cancel()  # the trainer finished before publishing the step the gate waits for

    def send(self, m: Any) -> None:
        if self.fenced:
            self._fan_out(m)
            return
        m.send()  # update_weights: mkdir -p step_t, touch NCCL_READY (resurrects a deleted step)
        folder = self.layout.step(m.snapshot().ptgt)
        folder.mkdir(exist_ok=True)
        touch(folder / "NCCL_READY")

    def _fan_out(self, m: Any) -> None:
        """Ask every registered reader; end the fan-out once the machine allows it. The resume load
        also waits for the resumed run's readers to join (at most a lease's time: a reader that
        does not come back is not waited for), so that they load the resume base first."""
        now = time.monotonic()
        if self._fanout_since is None:
            self._fanout_since = now
        for i, (reg, rd) in enumerate(zip(m.snapshot().reg, m.snapshot().rd, strict=True)):
            if reg and rd.name == "RIDLE":
                m.send(i)
        snap = m.snapshot()
        if m.enabled("sent") and (not snap.presume or all(snap.reg) or now - self._fanout_since > self.config.lease_s):
            m.sent()
            self._fanout_since = None

    def done(self, m: Any) -> None:
        m.load_done()
        snap = m.snapshot()
        if self.fenced:
            write_json(self.layout.marker, {"epoch": self.store.epoch, "step": self.store.absolute(snap.LS)})
        elif self.marker and snap.LS is not None:
            write_json(self.layout.marker, {"epoch": snap.lsEpoch, "step": snap.LS})
        self.stats.loads_ok += 1

    def check_marker(self) -> None:
        """Fenced: LOADED_STEP, read back, must say what the committed state says (absent without a load)."""
        path = self.layout.marker
        obj = read_json(path, "written by the orchestrator after every completed load")
        snap = self.store.peek()
        want = None if snap.LS is None else (self.store.epoch, self.store.absolute(snap.LS))
        got = None if obj is None else (int_field(path, obj, "epoch"), int_field(path, obj, "step"))
        if got != want:
            said = "nothing" if want is None else f"epoch {want[0]}, step {want[1]}"
            raise BadFile(path, f"says epoch {got[0]}, step {got[1]}; the protocol state says {said}" if got
                          else f"missing; the protocol state says {said}",
                          "the marker was edited, or a process died between the two writes: resume the run")

    def evict_expired(self, snap: Any) -> None:
        """Fenced: evict every registered reader (and the eval reader) whose lease ran out."""
        expired = [i for i, reg in enumerate(snap.reg) if reg and self.leases.expired(f"reader{i}")]
        eval_expired = snap.ev.name == "EREADING" and self.leases.expired("eval")
        if not expired and not eval_expired:
            return
        with self.store.transaction() as m:
            for i in expired:
                if m.enabled("evict", i):
                    m.evict(i)
                    self.stats.evictions.append(f"reader{i}")
            if eval_expired and m.enabled("evict_eval"):
                m.evict_eval()
                self.stats.evictions.append("eval")

"""Readers: the inference readers the orchestrator fans a load out to, and an eval reader.

Fenced (``FencedReader``): each reader process is one reader of the machine (``Rdr`` i), with
a lease it renews by a heartbeat (``lease.py``). Its ``open(i)`` lists the pinned step's
manifest, its ``read(i)`` is taken in the same transaction as its last shard read, so the
machine's verdict is the disk's at that instant; a load that fails is ``read_fail(i)`` (the
reader leaves and joins again, the loaded step does not move); a reader that finds itself
evicted (it was too slow to renew its lease) drops what it read and joins again.

Upstream policies (``Reader``): the spec has one server standing for every reader the
orchestrator asks (prime-rl's ``gather``): its ``open`` is the first reader's open, its
``read`` the last reader's final shard read. Every reader records what it loaded in
``consumers/<id>.json`` (tmp + fsync + replace, with the run epoch).

A load is typed at its boundary: a missing folder or shard is ``StepMissing``, a
refused pin ``StepRetired``, a half-written shard ``TornRead``, a shard that differs
from its manifest ``ManifestMismatch``; the reader counts it and keeps serving.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import POLL_S, Deadline, Stats, run_over
from .errors import BadFile, CkptError, StepRetired, TornRead
from .files import Layout, listed_shards, load_shard, read_json, read_manifest, write_json
from .launcher import check_epoch, run_epoch
from .lease import Heartbeat
from .store import ProtocolStore

DONE = ("ok", "failed", "torn")


class Reader:
    """One inference reader under an upstream policy: waits to be asked, lags, loads the target,
    records it; the fan-out's bookkeeping is in the readers' records (the spec has one server)."""

    def __init__(self, store: ProtocolStore, name: str, *, lag_s: float = 0.0, stats: Stats | None = None) -> None:
        self.store, self.name, self.lag_s = store, name, lag_s
        self.layout = store.layout
        self.stats = stats or Stats(name)
        self.epoch = self.stats.epoch = run_epoch(store)
        self.record: dict[str, Any] = {"epoch": self.epoch, "loaded": None, "pin": None, "target": None,
                                       "status": "idle", "role": "reader"}
        self.handled: tuple[int, int] | None = None  # (the machine's epoch, target) last loaded

    def register(self) -> None:
        with self.store.transaction():
            self._write()

    def _write(self) -> None:
        write_json(self.layout.record(self.name), self.record)

    def run(self, deadline: Deadline) -> None:
        self.register()
        while True:
            snap = self.store.peek()
            deadline.check(f"{self.name}'s next load", self.store.seq)
            if run_over(self.store, snap) and snap.rd.name in ("RIDLE", "FAILED"):
                return
            if snap.rd.name in ("QUEUED", "READING") and (snap.epoch, snap.ptgt) != self.handled:
                self.handled = (snap.epoch, snap.ptgt)
                self.load(snap.ptgt)
            else:
                time.sleep(POLL_S)

    def load(self, t: int) -> list[dict[str, Any]] | None:
        """Load step t as part of the current fan-out: its shards' state dicts, or None if it failed."""
        time.sleep(self.lag_s)  # the lagging reader: sleeps after being asked
        self.record.update(target=t, status="reading")
        reads = ShardReads(t)
        with self.store.transaction() as m:
            check_epoch(self.store, self.epoch)
            if m.snapshot().rd.name == "QUEUED":
                m.open()  # the first reader's open
            snap = m.snapshot()
            try:
                reads.shards = [(p, None) for p in listed_shards(self.layout.step(t), t)]  # finds it gone
                if snap.rd.name == "FAILED":
                    self.stats.divergences += 1  # the machine saw no shard, the disk has one
            except CkptError as exc:
                reads.error = exc
            self._write()
        reads.all_but_last(self.lag_s)  # and between shards
        with self.store.transaction() as m:
            reads.last()
            error = reads.error
            status = "ok" if error is None else "torn" if isinstance(error, TornRead) else "failed"
            self.record.update(status=status, pin=None, loaded=t if error is None else self.record["loaded"])
            self._write()
            statuses = self._statuses(t)
            if m.snapshot().rd.name == "READING" and statuses is not None:
                m.read()  # the machine's verdict on the fan-out
                # a torn read completes (and corrupts the weights) in the model too: no_torn_read breaks
                if (m.snapshot().rd.name == "OK") != all(s in ("ok", "torn") for s in statuses):
                    self.stats.divergences += 1
        return reads.settle(self.stats)

    def _statuses(self, t: int) -> list[str] | None:
        """Every registered reader's status for target t of this epoch; None while one is still loading."""
        out = []
        for path in sorted(self.layout.consumers.glob("*.json")):
            try:
                rec = read_json(path)
            except BadFile as exc:  # another reader's record is garbage: count it as failed, keep serving
                self.stats.errors.append(f"BadFile: {exc}")
                out.append("failed")
                continue
            if rec is None or rec.get("role") != "reader":
                continue
            if rec.get("epoch") != self.epoch or rec.get("target") != t or rec.get("status") not in DONE:
                return None
            out.append(str(rec["status"]))
        return out if len(out) >= self.store.config.readers else None  # one has not registered yet


class FencedReader:
    """One inference reader of the fenced machine (reader ``index``): joins, loads what it is asked, acks."""

    def __init__(self, store: ProtocolStore, index: int, *, lag_s: float = 0.0, stats: Stats | None = None) -> None:
        if not 0 <= index < store.config.readers:
            raise ValueError(f"reader {index}: the run has readers 0..{store.config.readers - 1}")
        self.store, self.i, self.lag_s = store, index, lag_s
        self.name = f"reader{index}"
        self.layout = store.layout
        self.stats = stats or Stats(self.name)
        self.epoch = self.stats.epoch = run_epoch(store)
        self.heartbeat: Heartbeat | None = None

    def register(self) -> None:
        """Write this reader's record, join the machine if it is not registered, start renewing the lease."""
        with self.store.transaction() as m:
            check_epoch(self.store, self.epoch)
            write_json(self.layout.record(self.name), {"epoch": self.epoch, "reader": self.i, "role": "reader"},
                       durable=False)
            if not m.snapshot().reg[self.i]:
                m.join(self.i)
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.layout.record(self.name), self.store.config.lease_s / 4).start()

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None

    def run(self, deadline: Deadline) -> None:
        self.register()
        try:
            while True:
                snap = self.store.peek()
                deadline.check(f"{self.name}'s next load", self.store.seq)
                rd = snap.rd[self.i].name
                if not snap.reg[self.i]:  # evicted (too slow to renew the lease), or a failed load
                    self.stats.evictions.append(self.name)
                    self.register()
                elif rd == "QUEUED":
                    self.load()
                elif rd == "OK" and self.store.machine.enabled("ack", self.i):
                    self._step("ack")
                elif run_over(self.store, snap) and rd == "RIDLE":
                    return
                else:
                    time.sleep(POLL_S)
        finally:
            self.close()

    def _step(self, action: str) -> None:
        with self.store.transaction() as m:
            if m.enabled(action, self.i):
                m.fire(action, self.i)

    def load(self) -> list[dict[str, Any]] | None:
        """Load the step this reader is asked for: its shards' state dicts, or None if it failed or
        the reader was evicted meanwhile (then nothing it read is used)."""
        time.sleep(self.lag_s)  # the lagging reader: sleeps after being asked
        with self.store.transaction() as m:
            check_epoch(self.store, self.epoch)
            if not m.enabled("open", self.i):
                if m.snapshot().rd[self.i].name == "QUEUED":  # the step is not published: refused, no read
                    m.read_fail(self.i)
                    self.stats.failed(StepRetired(self.store.absolute(m.snapshot().ptgt), None))
                return None  # or evicted meanwhile
            m.open(self.i)
            t = self.store.absolute(m.snapshot().ptgt)
            reads = ShardReads.of_manifest(self.layout, t)
        reads.all_but_last(self.lag_s)  # and between shards
        with self.store.transaction() as m:
            if m.snapshot().rd[self.i].name != "READING":
                return None  # evicted during the load: its pin is gone, what it read is not trusted
            reads.last()
            if reads.error is None:
                m.read(self.i)
            else:
                m.read_fail(self.i)  # out of the fan-out and the membership: it joins again
        return reads.settle(self.stats)


class EvalReader:
    """The eval reader (fenced): pins an old published step, reads it slowly, clears the pin."""

    def __init__(self, store: ProtocolStore, name: str = "eval", *, lag_s: float = 0.0, start_at: int = 2,
                 stats: Stats | None = None) -> None:
        self.store, self.name, self.lag_s, self.start_at = store, name, lag_s, start_at
        self.layout = store.layout
        self.stats = stats or Stats(name)
        self.epoch = self.stats.epoch = run_epoch(store)

    def run(self, deadline: Deadline) -> None:
        while True:
            snap = self.store.peek()
            deadline.check("the eval reader's step", self.store.seq)
            if snap.ev.name != "EIDLE" or run_over(self.store, snap):
                return
            if self.store.absolute(snap.n) >= self.start_at and snap.present:
                self.evaluate()
                return
            time.sleep(POLL_S)

    def evaluate(self) -> None:
        record = self.layout.record(self.name)
        with self.store.transaction() as m:
            check_epoch(self.store, self.epoch)
            choices = [args[0] for a, args in m.enabled_instances() if a == "eval_open"]
            if not choices:
                return
            v = min(choices)  # the oldest published step: the one retirement would take first
            m.eval_open(v)
            t = self.store.absolute(v)
            write_json(record, {"epoch": self.epoch, "pin": t, "role": "eval"}, durable=False)
            reads = ShardReads.of_manifest(self.layout, t)
        heartbeat = Heartbeat(record, self.store.config.lease_s / 4).start()
        try:
            reads.all_but_last(self.lag_s)  # a slow evaluation: the pin protects the step meanwhile
        finally:
            heartbeat.stop()
        with self.store.transaction() as m:
            if m.snapshot().ev.name != "EREADING":
                self.stats.evictions.append(self.name)
                return  # evicted: the pin is gone, the result is not used
            reads.last()
            if reads.error is None:
                m.eval_read()
            else:
                m.eval_fail()
            write_json(record, {"epoch": self.epoch, "pin": None, "role": "eval"}, durable=False)
        reads.settle(self.stats)


class ShardReads:
    """One load's shards: all but the last read outside the lock, the last one inside it, in the
    transaction that takes the machine's ``read``, so its verdict is the disk's at that instant."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.shards: list[tuple[Path, dict[str, Any] | None]] = []
        self.loaded: list[dict[str, Any]] = []
        self.error: CkptError | None = None

    @classmethod
    def of_manifest(cls, layout: Layout, step: int) -> ShardReads:
        """A published step's shards as its manifest lists them (an unreadable manifest: the load's error)."""
        reads = cls(step)
        try:
            reads.shards = [(layout.step(step) / e["name"], e) for e in read_manifest(layout.step(step), step)]
        except CkptError as exc:
            reads.error = exc
        return reads

    def _read(self, path: Path, entry: dict[str, Any] | None) -> None:
        if self.error is None:
            try:
                self.loaded.append(load_shard(path, self.step, entry))
            except CkptError as exc:  # typed at the load boundary; the reader keeps serving
                self.error = exc

    def all_but_last(self, lag_s: float) -> None:
        """Read them with ``lag_s`` of sleep spread across the shards (a lagging reader)."""
        pause = lag_s / max(1, len(self.shards))
        for path, entry in self.shards[:-1]:
            self._read(path, entry)
            time.sleep(pause)
        time.sleep(pause)  # before the last shard, in the next transaction

    def last(self) -> None:
        if self.shards:
            self._read(*self.shards[-1])

    def settle(self, stats: Stats) -> list[dict[str, Any]] | None:
        """Count the load; its state dicts, or None if it failed."""
        if self.error is not None:
            stats.failed(self.error)
            return None
        stats.loads_ok += 1
        stats.loaded.append(self.step)
        return self.loaded

"""Readers: the inference readers the orchestrator fans a load out to, and an eval reader.

The spec has one server standing for every reader the orchestrator asks (prime-rl's
``gather``): its ``open`` is the first reader's open (fenced: the pin, under the lock),
its ``read`` is the last reader's final shard read, taken in the same transaction as
that read, so the machine's verdict is the disk's at that instant. Every reader records
what it loaded in ``consumers/<id>.json`` (tmp + fsync + replace, with the run epoch).

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
from .files import listed_shards, load_shard, read_json, read_manifest, write_json
from .launcher import check_epoch, read_epoch
from .store import ProtocolStore

DONE = ("ok", "failed", "torn")


class Reader:
    """One inference reader: waits to be asked, lags, loads the target, records it."""

    def __init__(self, store: ProtocolStore, name: str, *, lag_s: float = 0.0, stats: Stats | None = None) -> None:
        self.store, self.name, self.lag_s = store, name, lag_s
        self.layout = store.layout
        self.fenced = store.config.policy == "fenced"
        self.stats = stats or Stats(name)
        self.epoch = self.stats.epoch = read_epoch(self.layout)
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
        self.record.update(target=t, status="reading", pin=t if self.fenced else None)
        reads = ShardReads(t)
        with self.store.transaction() as m:
            check_epoch(self.layout, self.epoch)
            if m.snapshot().rd.name == "QUEUED":
                m.open()  # the first reader's open: fenced, this is the pin
            snap = m.snapshot()
            try:
                if snap.rd.name == "FAILED" and self.fenced:
                    raise StepRetired(t, _floor(snap))  # refused before any read
                reads.shards = self._shards(t)  # the upstream policies just list the folder and find it gone
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

    def _shards(self, t: int) -> list[tuple[Path, dict[str, Any] | None]]:
        folder = self.layout.step(t)
        if self.fenced:
            return [(folder / e["name"], e) for e in read_manifest(folder, t)]
        return [(p, None) for p in listed_shards(folder, t)]

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


def _floor(snap: Any) -> int | None:
    if snap.LS is None or snap.ver is None:
        return None
    return int(min(snap.LS, snap.ver))


class EvalReader:
    """The eval reader (fenced, E = 1): pins an old published step, reads it slowly, clears the pin."""

    def __init__(self, store: ProtocolStore, name: str = "eval", *, lag_s: float = 0.0, start_at: int = 2,
                 stats: Stats | None = None) -> None:
        self.store, self.name, self.lag_s, self.start_at = store, name, lag_s, start_at
        self.layout = store.layout
        self.stats = stats or Stats(name)
        self.epoch = self.stats.epoch = read_epoch(self.layout)

    def run(self, deadline: Deadline) -> None:
        while True:
            snap = self.store.peek()
            deadline.check("the eval reader's step", self.store.seq)
            if snap.ev.name != "EIDLE" or run_over(self.store, snap):
                return
            if snap.n >= self.start_at and snap.stable:
                self.evaluate()
                return
            time.sleep(POLL_S)

    def evaluate(self) -> None:
        with self.store.transaction() as m:
            check_epoch(self.layout, self.epoch)
            choices = [args[0] for a, args in m.enabled_instances() if a == "eval_open"]
            if not choices:
                return
            v = min(choices)  # the oldest published step: the one retirement would take first
            m.eval_open(v)
            write_json(self.layout.record(self.name), {"epoch": self.epoch, "loaded": None, "pin": v, "role": "eval"})
            reads = ShardReads(v)
            try:
                if m.snapshot().ev.name != "EREADING":
                    raise StepRetired(v, _floor(m.snapshot()))
                reads.shards = [(self.layout.step(v) / e["name"], e) for e in read_manifest(self.layout.step(v), v)]
            except CkptError as exc:
                reads.error = exc
        reads.all_but_last(self.lag_s)  # a slow evaluation: the pin protects the step meanwhile
        with self.store.transaction() as m:
            reads.last()
            if m.snapshot().ev.name == "EREADING":
                m.eval_read()
            write_json(self.layout.record(self.name), {"epoch": self.epoch, "loaded": None, "pin": None, "role": "eval"})
        reads.settle(self.stats)


class ShardReads:
    """One load's shards: all but the last read outside the lock, the last one inside it, in the
    transaction that takes the machine's ``read``, so its verdict is the disk's at that instant."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.shards: list[tuple[Path, dict[str, Any] | None]] = []
        self.loaded: list[dict[str, Any]] = []
        self.error: CkptError | None = None

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

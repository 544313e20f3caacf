"""The trainer's side: the publisher (writes a step's shards, makes it visible) and the cleaner.

Every step goes through the generated machine: ``publish_open`` / ``publish_close`` /
``clean`` / ``train`` / ``janitor`` / ``purge`` are its transitions, and what the
cleaner deletes is exactly the set the machine's ``clean`` removes from ``present``:
the cleaner never computes a victim itself.

- fenced: shards and MANIFEST.json are written and fsynced in ``.staging/``, then one
  ``rename`` under the lock publishes ``step_N`` (never over an existing step); retired
  steps are renamed into ``.trash`` under the lock and purged outside it.
- pre_fix / post_fix (the upstream rules, for comparison): shards are written in place
  under their final names and ``STABLE`` is touched last; victims are ``rmtree``d.

Fenced, the machine's steps are relative to the window's base (``store.absolute``): the
trainer ``slide``s the window when it reaches the top, and ``finish``es when the run has as
many steps as it wants (``config.steps`` here; a user's loop calls ``finish`` itself).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from .common import POLL_S, Deadline, Stats, run_over
from .errors import CkptError, DiskError, FencedOut, StepFolderInvalid
from .files import (
    fsync_dir,
    list_folder,
    remove_tree,
    require_folder,
    save_shard,
    shard_name,
    touch,
    write_manifest,
)
from .launcher import run_epoch
from .store import ProtocolStore


def state_dict(step: int, shard: int, mb: float) -> dict[str, Any]:
    """A shard of fake weights: one float32 tensor of ``mb`` MiB whose values name the step."""
    import torch

    return {f"layer{shard}.weight": torch.full((max(1, int(mb * (1 << 18))),), float(step), dtype=torch.float32)}


class Trainer:
    def __init__(self, store: ProtocolStore, *, train_s: float = 0.0, kill_after: tuple[int, int] | None = None,
                 stats: Stats | None = None) -> None:
        self.store = store
        self.layout = store.layout
        self.config = store.config
        self.fenced = self.config.policy == "fenced"
        self.train_s = train_s
        self.kill_after = kill_after  # (step, shard): SIGKILL this process after writing that shard
        self.stats = stats or Stats("trainer")
        self.epoch = run_epoch(store)

    def run(self, deadline: Deadline) -> None:
        while True:
            snap = self.store.peek()
            deadline.check("the trainer's next step", self.store.seq)
            if snap.trash:  # fenced: purge what the last clean retired before anything else
                self.purge()
                continue
            match snap.tpc.name:
                case "TOP":
                    self.publish(snap.n)
                case "CLEAN":
                    self.clean()
                case "WAIT":
                    if self.fenced:
                        self._wait_fenced(snap)
                        continue
                    if snap.crashed:
                        return
                    if snap.s > snap.n:
                        time.sleep(self.train_s)  # train on batch n
                        self.step("train")
                    else:
                        time.sleep(POLL_S)  # block on rollouts/step_n
                case "DONE":
                    if self.store.machine.enabled("janitor"):
                        self.step("janitor")
                    elif run_over(self.store, snap):
                        return
                    else:
                        time.sleep(POLL_S)
                case other:
                    raise CkptError(f"the trainer found its own step half-published (pc {other}): resume the run")

    def _wait_fenced(self, snap: Any) -> None:
        """Between steps: retire what became retirable, stop after the last step, slide the window
        at its top, train once the batch is there."""
        m = self.store.machine
        if m.enabled("janitor"):
            self.step("janitor")
        elif self.store.absolute(snap.n) >= self.config.steps:
            self.finish()
        elif snap.n == self.config.window:  # the batch for n + 1 cannot ship before the window moves
            if m.enabled("slide"):
                self.slide()
            else:
                time.sleep(POLL_S)  # the bottom step is still pinned or not yet retired
        elif snap.s > snap.n:
            time.sleep(self.train_s)  # train on batch n
            self.step("train")
        else:
            time.sleep(POLL_S)  # block on rollouts/step_n

    def finish(self) -> None:
        """Fenced: the step just published is the run's last (a trainer decides its own length)."""
        self.step("finish")

    def slide(self) -> None:
        """Fenced: move the window up one step; the machine's step v is then the run's base + v."""
        with self.store.transaction() as m:
            self.store.take(m, "slide")
            self.store.base += 1

    def step(self, action: str) -> None:
        with self.store.transaction() as m:
            self.store.take(m, action)

    # -------------------------------------------------------------- publisher
    def publish(self, n: int | None = None, shards: list[dict[str, Any]] | None = None) -> int:
        """Publish the machine's step n: stage or open in place, write every shard, then make it
        visible; returns the run's step number (``n`` is only a hint: the machine says which).

        ``shards``: the state dict, one dict of tensors per shard file (``config.shards`` of
        them); the demo's fake weights when omitted.
        """
        if shards is not None and len(shards) != self.config.shards:
            raise ValueError(f"step {n}: {len(shards)} shards, the run has {self.config.shards} per step")
        with self.store.transaction() as m:
            self.store.take(m, "publish_open")
            n = self.store.absolute(m.snapshot().n)  # the machine's n, as the run's step number
            folder = self._open(n)
        entries = []
        for j in range(self.config.shards):
            tensors = shards[j] if shards is not None else state_dict(n, j, self.config.shard_mb)
            entries.append(save_shard(folder / shard_name(j), tensors))
            if self.kill_after == (n, j):
                os.kill(os.getpid(), signal.SIGKILL)  # fault injection: die mid-write
        if self.fenced:
            write_manifest(folder, n, self.epoch, entries)
            fsync_dir(folder)
        with self.store.transaction() as m:
            self.store.take(m, "publish_close")
            self._close(n, folder)
        return n

    def _open(self, n: int) -> Path:
        try:
            if self.fenced:
                staging = require_folder(self.layout.staging, "where a fenced step is written before it is published")
                folder = staging / f"step_{n}.{self.epoch}.{os.getpid()}"
                folder.mkdir()
            else:  # mkdir(exist_ok), then open every shard under its final name (truncate)
                folder = self.layout.step(n)
                folder.mkdir(exist_ok=True)
                for j in range(self.config.shards):
                    (folder / shard_name(j)).open("wb").close()
        except OSError as exc:
            raise DiskError("create", self.layout.step(n), exc) from None
        return folder

    def _close(self, n: int, folder: Path) -> None:
        if not self.fenced:
            touch(folder / "STABLE")
            return
        current = run_epoch(self.store)
        if current != self.epoch:
            raise FencedOut(self.epoch, current)
        target = self.layout.step(n)
        if target.exists():
            raise StepFolderInvalid(n, target, "already exists: a published step is never overwritten")
        try:
            os.rename(folder, target)
            fsync_dir(self.layout.root)
        except OSError as exc:
            raise DiskError("publish", target, exc) from None

    # -------------------------------------------------------------- cleaner
    def clean(self) -> None:
        """The machine's ``clean``: its victims are what it removes from ``present``; the disk follows."""
        with self.store.transaction() as m:
            before = m.snapshot().present
            self.store.take(m, "clean")
            victims = sorted(self.store.absolute(v) for v in before - m.snapshot().present)
            if self.fenced:
                self._retire(victims)
            else:
                for v in victims:
                    for exc in remove_tree(self.layout.step(v)):
                        raise DiskError("delete", self.layout.step(v), exc)

    def _retire(self, victims: list[int]) -> None:
        """Rename each victim into .trash (atomic, invisible); on any failure put back what moved."""
        moved: list[tuple[Path, Path]] = []
        if victims:
            require_folder(self.layout.trash, "where retired steps wait for the purge")
        try:
            for v in victims:
                src = self.layout.step(v)
                if not src.is_dir():
                    raise StepFolderInvalid(v, src, "the protocol says published, the disk has no folder")
                dst = self.layout.trash / f"step_{v}.{uuid.uuid4().hex[:8]}"
                os.rename(src, dst)
                moved.append((src, dst))
        except (OSError, CkptError) as exc:
            for src, dst in reversed(moved):
                os.rename(dst, src)
            if isinstance(exc, OSError):
                raise DiskError("retire", self.layout.root, exc) from None
            raise

    def purge(self) -> None:
        """rmtree the trash outside the lock, then the machine's ``purge``."""
        for entry in sorted(list_folder(self.layout.trash, "the fenced run's retired steps, created with the run")):
            for exc in remove_tree(entry):
                raise DiskError("delete", entry, exc)
        self.step("purge")

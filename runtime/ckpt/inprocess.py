"""Every actor of a run in one process, stepped by hand: for tests, benchmarks and debugging.

Real files, real flock, the same actor classes the worker processes run; only the
scheduling is yours. ``step()`` is one trainer step with a load of the newest step.
"""

from __future__ import annotations

import os
from typing import Any

from .config import RunConfig
from .consumer import FencedReader, Reader
from .files import Layout
from .launcher import create_run
from .orchestrator import Poller
from .store import ProtocolStore
from .trainer import Trainer


class InProcessRun:
    def __init__(self, root: str | os.PathLike[str], config: RunConfig) -> None:
        create_run(root, config)
        self.layout = Layout(root)
        self.trainer = Trainer(ProtocolStore(root, actor="trainer"))
        self.poller = Poller(ProtocolStore(root, actor="poll"))
        store = ProtocolStore(root, actor="reader0")
        self.reader: FencedReader | Reader = (FencedReader(store, 0) if config.fenced else Reader(store, "reader0"))
        self.reader.register()

    def snap(self) -> Any:
        return self.trainer.store.peek()

    def ship(self) -> None:
        with self.poller.store.transaction() as m:
            m.ship()

    def publish_next(self) -> int:
        """Ship a batch, train on it, publish the next step (sliding the fenced window at its top)."""
        if self.trainer.fenced and self.snap().n == self.trainer.config.window:
            self.trainer.slide()
        self.ship()
        self.trainer.step("train")
        return self.trainer.publish()

    def trainer_step(self) -> None:
        """One whole trainer step: ship, train, publish, clean, and purge what the clean retired."""
        self.publish_next()
        self.trainer.clean()
        if self.snap().trash:
            self.trainer.purge()

    def load_newest(self) -> None:
        """The poll task picks the newest step, the reader loads it, the load is recorded."""
        for body in (self.poller.start, self.poller.send):
            self.poller.step(body)
        if isinstance(self.reader, FencedReader):
            self.reader.load()
        else:
            self.reader.load(self.poller.store.peek().ptgt)
        self.poller.step(self.poller.done)
        self.poller.step(lambda m: m.record())
        if isinstance(self.reader, FencedReader):
            with self.reader.store.transaction() as m:
                m.ack(0)

    def absolute(self, v: int) -> int:
        return self.trainer.store.absolute(v)

    def close(self) -> None:
        if isinstance(self.reader, FencedReader):
            self.reader.close()
        for s in (self.trainer.store, self.poller.store, self.reader.store):
            s.close()

"""What every actor shares: its store, its counters, its deadline, and when the run is over."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import CkptError, TornRead
from .store import ProtocolStore

POLL_S = 0.005  # how often an actor looks at the committed state while it waits


@dataclass
class Stats:
    """What one actor saw; the demo sums them into its report."""

    actor: str
    epoch: int = 0                # the run epoch the actor started in
    loads_ok: int = 0
    loaded: list[int] = field(default_factory=list)   # the steps loaded, in order
    load_failures: int = 0
    torn_reads: int = 0
    divergences: int = 0          # the machine's verdict on a load differed from the disk's
    errors: list[str] = field(default_factory=list)
    max_dirs: int = 0
    transitions: int = 0
    evictions: list[str] = field(default_factory=list)  # fenced: the readers this actor evicted (or was evicted as)

    def failed(self, exc: CkptError) -> None:
        if isinstance(exc, TornRead):
            self.torn_reads += 1
        else:
            self.load_failures += 1
        self.errors.append(f"{type(exc).__name__}: {exc}")

    def write(self, folder: Path, store: ProtocolStore | None) -> None:
        if store is not None:
            self.max_dirs = max(self.max_dirs, store.max_dirs)
            self.transitions = store.committed
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.actor}-{os.getpid()}.json").write_text(json.dumps(asdict(self)))


class Deadline:
    """How long an actor may wait with the run standing still: ``--timeout``.

    The clock restarts whenever the committed protocol state moves (any actor's transition), so a
    long healthy run is never cut, and a run where nothing happens for ``seconds`` is.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.seen: int | None = None

    def check(self, what: str, progress: int | None = None) -> None:
        """Raise TimeoutError if nothing moved for ``seconds``; ``progress``: the committed seq now."""
        now = time.monotonic()
        if progress is not None and progress != self.seen:
            self.seen, self.at = progress, now + self.seconds
        elif now > self.at:
            raise TimeoutError(f"gave up waiting for {what}: the run did not move for {self.seconds:g} s")


def run_over(store: ProtocolStore, snap: Any) -> bool:
    """The run has nothing left to do: upstream, crashed or every batch shipped; fenced, the
    trainer finished; and in both the trainer done and no newer load to start."""
    if store.config.fenced:
        return (snap.finished and snap.tpc.name == "DONE" and snap.poll.name == "IDLE" and not snap.presume
                and all(v <= snap.c for v in snap.present))
    if snap.crashed:
        return True
    elif not (snap.tpc.name == "DONE" and snap.s == store.config.steps and snap.poll.name == "IDLE"):
        return False
    return not any(a in ("poll_start", "resume_load") for a, _ in store.machine.enabled_instances())

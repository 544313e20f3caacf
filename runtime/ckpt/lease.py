"""Reader leases (fenced): a reader renews its lease by touching its record; the orchestrator evicts
a reader whose lease ran out.

A reader process runs a ``Heartbeat`` thread that sets the mtime of ``consumers/<name>.json``
every ``lease_s / 4`` seconds, also while it is busy inside a long load. The orchestrator's
``Leases.expired`` reads those mtimes (one host, one clock). A reader killed with SIGKILL,
or stopped, stops renewing; ``lease_s`` later the orchestrator takes the machine's ``evict``:
its queued or running load is abandoned (the pin released), its weights stop counting, and
the run goes on without it. A reader that was only slow finds itself evicted at its next
transaction and joins again. A record that is missing (a reader that never started, or a
record removed by a resume) counts from when the orchestrator first looked for it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path


class Heartbeat:
    """Touch ``path`` every ``period`` seconds until stopped."""

    def __init__(self, path: Path, period: float) -> None:
        self.path, self.period = path, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {path.name}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with contextlib.suppress(OSError):  # a resume removed the record: the next transaction finds out
                os.utime(self.path)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Leases:
    """The orchestrator's view of every reader's lease."""

    def __init__(self, consumers: Path, lease_s: float) -> None:
        self.consumers, self.lease_s = consumers, lease_s
        self._missing_since: dict[str, float] = {}

    def expired(self, name: str) -> bool:
        """Whether ``name`` has not renewed its lease for ``lease_s`` seconds."""
        now = time.time()
        try:
            renewed = (self.consumers / f"{name}.json").stat().st_mtime
        except FileNotFoundError:
            renewed = self._missing_since.setdefault(name, now)
        else:
            self._missing_since.pop(name, None)
        return now - renewed > self.lease_s

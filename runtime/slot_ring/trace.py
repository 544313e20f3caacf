"""Each process's events as actions of the whole protocol (spec/protocols/slot_ring.rf).

The ring runs the server half of the protocol (slot_ring_server.rf); a run is checked against
the whole protocol, clients and ghosts included, by replaying every process's events through it
(``racefree replay``). This writes those events: the writer's ``write``, each handler's
``accept`` ... ``finalise`` and the reaper's ``reclaim`` (under the ring lock, in the order the
ring took them), each client's ``claim`` ... ``recv``/``timeout``. Handler ids are the client's
attempt numbers (client c's k-th attempt is handler k * C + c), generations the write counter,
so each is used once and the replay's instance is the run's own (``replay_consts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from racefree.codegen.instance import machine_class
from racefree.runtime.base import ActionInfo, Recorder

from .config import protocol_spec


class SpecTrace:
    """One process's JSONL events of ``machine`` (a machine of slot_ring.rf), or nothing (None path)."""

    def __init__(self, machine: str, directory: Path | None, stem: str, *, flush_each: bool = False) -> None:
        cls = machine_class(protocol_spec(), machine)
        self._info: dict[str, ActionInfo] = {a.name: a for a in cls.ACTIONS}
        self.recorder = Recorder.for_process(directory, stem) if directory is not None else None
        self._flush = flush_each  # a process that may be killed keeps its events on disk as it goes

    def __call__(self, action: str, *args: Any) -> None:
        if self.recorder is not None:
            self.recorder.record(self._info[action], args)
            if self._flush:
                self.recorder.flush()

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def handler_id(client: int, clients: int, attempt: int) -> int:
    """The handler record of client ``client``'s ``attempt``-th attempt (from 0): never reused."""
    return attempt * clients + client


def replay_consts(slots: int, payloads: int, handlers: int, clients: int, attempts: int) -> dict[str, int]:
    """slot_ring.rf's instance a run's events fit: its slots, payloads written, handler ids, clients, budget."""
    return {"N": slots, "G": max(1, payloads), "H": max(1, handlers), "C": max(1, clients), "A": attempts}

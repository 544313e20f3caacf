"""The ring: N slots in POSIX shared memory, their meta, and the server machine that owns both.

Every write, accept, consume, release and reclaim is a transition of the generated server
machine for the policy (``config.SERVER_MACHINES``, built at 64-bit generations and tokens),
taken under the ring lock together with what it guards: the writer's copy into the slot, the
grant's bookkeeping for the reaper, the slot meta in shared memory and the trace event. The
server's handlers and the writer share the ring in one process (as upstream: a per-process
lock is enough only while they do). Callers only move bytes.

Slot meta is four int64s per slot, ``(size, state, gen, token)``, mirrored from the machine
after each transition for anyone mapping the segment (a monitor, a debugger).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np
from racefree.codegen.instance import machine_class
from racefree.runtime.base import MachineBase

from .config import ID_BOUND, RingConfig, server_spec
from .errors import WireError
from .trace import SpecTrace
from .wire import STAMP_BYTES, TRAILER_BYTES, Kind, pack_into, stamp_into

META_WORDS = 4
FREE, READY, READING = 0, 1, 2
_REPLY = {1: Kind.OK, 2: Kind.STALE, 3: Kind.BUSY}  # the machine's Reply enum -> the record kind
CONSUME, RELEASE, NONE = "consume", "release", "none"  # what a handler owes
_FIN = (NONE, CONSUME, RELEASE)  # pre_fix's Fin enum


@dataclass(frozen=True)
class Written:
    """One write: the payload's generation and, unless the slot was being read (``refused``),
    its slot and size; ``overwritten`` is the READY generation it replaced (0: none)."""

    gen: int
    slot: int | None
    nbytes: int
    overwritten: int
    refused: bool


@dataclass(frozen=True)
class Grant:
    kind: Kind          # OK, STALE or BUSY
    slot: int
    gen: int            # OK: the granted generation; otherwise the slot's own (0: never written)
    nbytes: int
    token: int


@dataclass
class _Live:
    token: int
    since: float


class SlotRing:
    """The shared-memory ring and its machine. ``trace`` gets the whole protocol's server events."""

    def __init__(self, config: RingConfig, trace: SpecTrace | None = None) -> None:
        self.config = config
        n, size = config.slots, config.slot_bytes
        self._shm = shared_memory.SharedMemory(create=True, size=n * size + n * META_WORDS * 8)
        self.name = self._shm.name
        self.data = np.ndarray((n, size), dtype=np.uint8, buffer=self._shm.buf)
        self.meta = np.ndarray((n, META_WORDS), dtype=np.int64, buffer=self._shm.buf, offset=n * size)
        self.meta[:] = 0
        cls = machine_class(server_spec(), config.server_machine, {"N": n, "G": ID_BOUND, "T": ID_BOUND})
        self.machine: MachineBase = cls()
        self.lock = threading.Lock()
        self.trace = trace or SpecTrace(config.spec_machine, None, "")
        self._live: dict[int, _Live] = {}  # slot -> the grant the reaper watches (fenced)
        self._sizes = [0] * n
        self.reclaimed = 0
        self._closed = False
        self._chunks = (1,) if config.policy == "pre_fix" else ()  # pre_fix's write(k): single-chunk references

    # ------------------------------------------------------------- writer
    def write(self, tensors: Mapping[str, Any] | None = None, *,
              fill: Callable[[np.ndarray], int] | None = None) -> Written:
        """Copy one payload into the next slot (``tensors`` packed, or ``fill(view) -> bytes
        used``), stamped with its generation; a slot being read refuses it (recorded lost)."""
        m: Any = self.machine
        with self.lock:
            s, gen = int(m.widx), int(m.next)
            if m.st[s] == READING:
                m.refuse()
                self.trace("write", *self._chunks)
                return Written(gen, None, 0, 0, True)
            overwritten = int(m.gen[s]) if m.st[s] == READY else 0
            body = self.data[s, STAMP_BYTES:self.config.slot_bytes - TRAILER_BYTES]
            used = fill(body) if fill is not None else pack_into(body, tensors or {})
            nbytes = STAMP_BYTES + used + TRAILER_BYTES
            stamp_into(self.data[s], gen, nbytes)
            m.write()
            self._sizes[s] = nbytes
            self._mirror(s)
            self.trace("write", *self._chunks)
            return Written(gen, s, nbytes, overwritten, False)

    # ------------------------------------------------------------- server
    def accept(self, slot: int, gen: int, handler: int) -> Grant:
        """A request for (slot, gen): the policy's read_raw. OK grants a token (fenced)."""
        if not (0 <= slot < self.config.slots and 0 <= gen <= ID_BOUND):
            raise WireError(f"request for slot {slot}, generation {gen}: no such slot or generation")
        m: Any = self.machine
        with self.lock:
            m.accept(slot, gen)
            kind = _REPLY[int(m.reply)]
            token = int(m.tok[slot]) if self.config.fenced else 0
            if kind is Kind.OK:
                self._live[slot] = _Live(token, time.monotonic())
            self._mirror(slot)
            self.trace("accept", handler, False)
            return Grant(kind, slot, int(m.gen[slot]), self._sizes[slot], token)

    def view(self, slot: int, nbytes: int) -> np.ndarray:
        """The slot's bytes, zero-copy: what a handler sends."""
        return self.data[slot, :nbytes]

    def send_start(self, handler: int, *, wedge: bool = False) -> None:
        with self.lock:
            self.trace("send_start", handler, wedge)

    def send_end(self, handler: int, slot: int) -> str:
        """The payload went out; the finaliser the handler now owes: "consume", or in pre_fix
        whatever the shared refcount says ("none" while another chunk holds it, "release" when
        the key was already popped: upstream's KeyError after the chunk)."""
        with self.lock:
            owe = self._refcount("sent", slot) if self.config.policy == "pre_fix" else CONSUME
            self.trace("send_end", handler)
            return owe

    def fail(self, handler: int, slot: int) -> str:
        """The send or the handler failed; the finaliser it owes: "release" (pre_fix: "none" while
        another chunk holds the refcount)."""
        with self.lock:
            owe = self._refcount("failed", slot) if self.config.policy == "pre_fix" else RELEASE
            self.trace("fail", handler, False)
            return owe

    def finalise(self, handler: int, slot: int, token: int, owe: str) -> bool:
        """The handler's one finaliser, a compare-and-set on the token in fenced: whether it
        changed the slot (fenced: then, and only then, COMMIT follows a consume)."""
        m: Any = self.machine
        with self.lock:
            took = False
            if owe != NONE:
                (m.consume if owe == CONSUME else m.release)(slot, token)
                took = bool(m.took)
            live = self._live.get(slot)
            if took and live is not None and live.token == token:
                del self._live[slot]
            self._mirror(slot)
            self.trace("finalise", handler)
            return took

    # ------------------------------------------------------------- reaper
    def reclaim_expired(self, now: float | None = None) -> int:
        """Fenced's reaper: reclaim every grant older than the lease (its holder is presumed gone;
        a wrong guess costs that attempt only). The number reclaimed."""
        if not self.config.fenced:
            return 0
        now = time.monotonic() if now is None else now
        m: Any = self.machine
        done = 0
        with self.lock:
            for slot, live in list(self._live.items()):
                if now - live.since >= self.config.lease:
                    m.reclaim(slot, live.token)
                    del self._live[slot]
                    if m.took:
                        done += 1
                        self._mirror(slot)
                        self.trace("reclaim", slot)
        self.reclaimed += done
        return done

    # ------------------------------------------------------------- state
    def ready(self) -> int:
        """The ready count (pre_fix reports entry_count, as upstream)."""
        m: Any = self.machine
        with self.lock:
            if self.config.policy == "pre_fix":
                return int(m.ec)
            return sum(1 for x in m.st if x == READY)

    def meta_of(self, slot: int) -> tuple[int, int, int, int]:
        with self.lock:
            return tuple(int(x) for x in self.meta[slot])  # type: ignore[return-value]

    def _mirror(self, slot: int) -> None:
        m: Any = self.machine
        self.meta[slot] = (self._sizes[slot], int(m.st[slot]), int(m.gen[slot]),
                           int(m.tok[slot]) if self.config.fenced else 0)

    def _refcount(self, action: str, slot: int) -> str:
        m: Any = self.machine
        getattr(m, action)(slot)
        return _FIN[int(m.owe)]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        del self.data, self.meta
        self._shm.close()
        self._shm.unlink()

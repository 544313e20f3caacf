"""The trainer side: pull a payload by its reference over UCXX, with the brief's retry rules.

``SlotClient.fetch(ref)`` runs at most ``attempts`` attempts (one explicit budget). Each attempt
uses a port by round-robin (a retry another port; a port that failed a first attempt is
quarantined), an endpoint from the pool or a new one, a fresh receive buffer and one deadline
scaled with nbytes. Fenced delivers only on OK(slot, gen, nbytes, token) · payload · COMMIT with
every field matching the reference and the payload's stamp; STALE is a recorded loss
(``PayloadLost``), BUSY a retry; anything else fails the attempt and closes its endpoint, which
is pooled only after a clean terminal record. The upstream policies (``policy``) behave as
upstream: no generation on the wire, the payload accepted as it arrives.

Every step is also an event of the whole protocol (``trace``: claim, issue, issue_fail, recv,
timeout), so the run can be replayed against slot_ring.rf.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import RingConfig
from .errors import PayloadLost, WireError
from .server import close_endpoint
from .trace import SpecTrace, handler_id
from .wire import (
    OVERHEAD,
    STAMP_BYTES,
    TRAILER_BYTES,
    Kind,
    check_stamp,
    empty_record,
    parse_record,
    record,
    unpack,
)

log = logging.getLogger("racefree.slot_ring.client")
POOL_PER_PORT = 2
RETIRE_S = 100.0  # a pooled endpoint is retired before the server's 120 s idle exit


@dataclass(frozen=True)
class Ref:
    """What the writer publishes for one payload: where it is and which generation it is."""

    host: str
    ports: tuple[int, ...]
    slot: int
    gen: int
    nbytes: int

    def to_json(self) -> list[Any]:
        return [self.host, list(self.ports), self.slot, self.gen, self.nbytes]

    @classmethod
    def from_json(cls, v: list[Any]) -> Ref:
        return cls(v[0], tuple(v[1]), v[2], v[3], v[4])


@dataclass(frozen=True)
class Payload:
    gen: int            # the reference's generation
    buf: np.ndarray     # the bytes received (stamp and trailer included), a buffer of this attempt's own

    @property
    def body(self) -> np.ndarray:
        return self.buf[STAMP_BYTES:len(self.buf) - TRAILER_BYTES]

    def tensors(self, *, torch_tensors: bool = False) -> dict[str, Any]:
        return unpack(self.body, torch_tensors=torch_tensors)


@dataclass
class ClientStats:
    fetched: int = 0
    delivered: int = 0
    lost_stale: int = 0
    lost_budget: int = 0
    attempts: int = 0
    busy: int = 0
    failed_attempts: int = 0
    connect_failures: int = 0


@dataclass(frozen=True)
class ClientFaults:
    late_timeout_every: int = 0  # every k-th attempt, from the first, times out after its payload arrived (X5)
    late_delay_s: float = 0.05   # ... this long after (a deadline that fires late: a busy event loop)

    def late(self, attempt: int) -> bool:
        return self.late_timeout_every > 0 and attempt % self.late_timeout_every == 0


class _Failed(Exception):
    """This attempt failed: its endpoint is closed, the next attempt may follow."""


class SlotClient:
    """One trainer's client (``client`` of ``clients``: the handler ids it uses are its own)."""

    def __init__(self, config: RingConfig, *, client: int = 0, clients: int = 1,
                 trace: SpecTrace | None = None, faults: ClientFaults | None = None) -> None:
        self.config = config
        self.client, self.clients = client, clients
        self.trace = trace or SpecTrace(config.spec_machine, None, "")
        self.faults = faults or ClientFaults()
        self.stats = ClientStats()
        self._pool: dict[tuple[str, int], list[tuple[Any, float]]] = {}
        self._quarantine: dict[tuple[str, int], float] = {}
        self._rr = 0

    async def fetch(self, ref: Ref, out: np.ndarray | None = None) -> Payload:
        """The payload of ``ref``, whole and of its generation (fenced), or PayloadLost (recorded).

        ``out`` (uint8, at least ``ref.nbytes``): the first attempt receives into it, as a trainer's
        pinned receive buffer would (the payload then views it). A retry always receives into a
        fresh buffer: a cancelled receive of a failed attempt may still land in the old one."""
        self.stats.fetched += 1
        c = self.client
        self.trace("claim", c, ref.gen)
        last = -1
        for att in range(self.config.attempts):
            port = self._pick(ref, last)
            last = port
            hid = handler_id(c, self.clients, self.stats.attempts)
            self.stats.attempts += 1
            try:
                ep = await self._endpoint(ref.host, port)
            except Exception as exc:  # noqa: BLE001 - connection refused or timed out: rotatable
                self.stats.connect_failures += 1
                log.info("connect to %s:%d failed: %s", ref.host, port, exc)
                self.trace("issue_fail", c)
                self._quarantine_after(att, ref.host, port)
                continue
            self.trace("issue", c, hid)
            try:
                into = out if att == 0 and out is not None and len(out) >= ref.nbytes else None
                outcome = await asyncio.wait_for(self._attempt(ep, ref, hid, att, self.stats.attempts - 1, into),
                                                 self.config.deadline(ref.nbytes))
            except Exception as exc:  # noqa: BLE001 - a deadline, a broken record, a closed endpoint: the attempt fails
                self.stats.failed_attempts += 1
                log.info("attempt %d of payload %d failed: %s", att, ref.gen, exc or type(exc).__name__)
                await close_endpoint(ep, self.config.close_s, abort=True)
                self.trace("timeout", c)
                self._quarantine_after(att, ref.host, port)
                continue
            kind, payload = outcome
            self.trace("recv", c)
            if kind is Kind.STALE and self.config.policy == "pre_fix":
                # upstream retried StaleSlotError: the attempt fails, its endpoint closed
                self.stats.failed_attempts += 1
                await close_endpoint(ep, self.config.close_s)
                continue
            self._give_back(ref.host, port, ep)
            if kind is Kind.STALE:
                self.stats.lost_stale += 1
                raise PayloadLost(ref.gen, "stale: the slot no longer holds this generation")
            if kind is Kind.BUSY:  # the next attempt, at once (no quarantine); the budget bounds it
                self.stats.busy += 1
                continue
            assert payload is not None
            self.stats.delivered += 1
            return payload
        self.stats.lost_budget += 1
        raise PayloadLost(ref.gen, f"{self.config.attempts} attempts failed")

    async def _attempt(self, ep: Any, ref: Ref, hid: int, att: int, attempt: int,
                       into: np.ndarray | None) -> tuple[Kind, Payload | None]:
        """One attempt (``att``: its number within the reference, for the server's fault plan and
        logs; ``attempt``: this client's count)."""
        fenced = self.config.fenced
        await ep.send(record(Kind.REQ, ref.slot, ref.gen if fenced else 0, hid, att))
        rep = empty_record()
        await ep.recv(rep)
        expect = (Kind.OK, Kind.STALE, Kind.BUSY) if fenced else (Kind.OK, Kind.STALE)
        try:
            kind, slot, gen, nbytes, token = parse_record(rep, expect)
        except WireError as exc:
            raise _Failed(str(exc)) from None
        if slot != ref.slot or (fenced and kind is not Kind.STALE and gen != ref.gen):
            raise _Failed(f"{kind.name} for slot {slot} generation {gen}, asked for slot {ref.slot} generation {ref.gen}")
        if kind is not Kind.OK:
            return kind, None
        if fenced and nbytes != ref.nbytes:
            raise _Failed(f"OK for {nbytes} bytes, the reference says {ref.nbytes}")
        # fresh per attempt unless the caller's: a cancelled receive may land late
        buf = into[:ref.nbytes] if into is not None else np.empty(max(ref.nbytes, OVERHEAD), dtype=np.uint8)
        await ep.recv(buf)
        if fenced:
            check_stamp(buf, ref.gen, ref.nbytes)
            commit = empty_record()
            await ep.recv(commit)
            ck, cs, cg, cn, ct = parse_record(commit, (Kind.COMMIT,))
            if (cs, cg, cn, ct) != (slot, gen, nbytes, token):
                raise _Failed(f"COMMIT {(cs, cg, cn, ct)} does not match OK {(slot, gen, nbytes, token)}")
        if self.faults.late(attempt):
            await asyncio.sleep(self.faults.late_delay_s)
            raise _Failed("fault injection: the deadline fired after the payload arrived")
        return Kind.OK, Payload(ref.gen, buf)

    # ------------------------------------------------------------- ports and endpoints
    def _pick(self, ref: Ref, last: int) -> int:
        now = time.monotonic()
        ports = [p for p in ref.ports if self._quarantine.get((ref.host, p), 0) <= now] or list(ref.ports)
        if last in ports and len(ports) > 1:
            ports.remove(last)  # a retry goes to another port
        self._rr += 1
        return ports[self._rr % len(ports)]

    def _quarantine_after(self, attempt: int, host: str, port: int) -> None:
        if attempt == 0 and self.config.quarantine_s > 0 and self.config.policy != "pre_fix":  # PR #695 added it
            self._quarantine[(host, port)] = time.monotonic() + self.config.quarantine_s

    async def _endpoint(self, host: str, port: int) -> Any:
        import ucxx

        pooled = self._pool.get((host, port), [])
        now = time.monotonic()
        while pooled:
            ep, born = pooled.pop()
            if now - born < RETIRE_S and not ep.closed:
                return ep
            await close_endpoint(ep, self.config.close_s)
        ep = await ucxx.create_endpoint(host, port, connect_timeout=self.config.connect_s)
        ep._racefree_born = now  # noqa: SLF001 - the pool's retirement clock
        return ep

    def _give_back(self, host: str, port: int, ep: Any) -> None:
        pooled = self._pool.setdefault((host, port), [])
        if len(pooled) < POOL_PER_PORT:
            pooled.append((ep, getattr(ep, "_racefree_born", time.monotonic())))
        else:
            asyncio.ensure_future(close_endpoint(ep, self.config.close_s))

    async def connect(self, host: str, ports: tuple[int, ...] | list[int]) -> None:
        """Open one pooled endpoint per port ahead of the first fetch (a first connection takes
        about half a second over TCP); a port that refuses is quarantined."""
        for port in ports:
            try:
                ep = await self._endpoint(host, port)
            except Exception as exc:  # noqa: BLE001 - the fetch will retry and rotate
                log.info("warm-up connect to %s:%d failed: %s", host, port, exc)
                self._quarantine_after(0, host, port)
                continue
            self._give_back(host, port, ep)

    async def close(self) -> None:
        for pooled in self._pool.values():
            for ep, _ in pooled:
                await close_endpoint(ep, self.config.close_s)
        self._pool.clear()

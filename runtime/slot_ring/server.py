"""The server threads of the rollout process: UCXX listeners on P ports, one handler per request.

A connection carries any number of requests (clients pool their endpoints). Each request is one
handler of the protocol: REQ(slot, gen, handler id) -> the ring's accept -> OK(slot, gen,
nbytes, token) -> the slot's bytes, sent zero-copy -> the finaliser -> (fenced, when its
compare-and-set took) COMMIT(slot, gen, nbytes, token). A STALE or BUSY reply ends the request
and the connection stays open. A bad request gets an ERR record and its endpoint is closed; the
server keeps serving. Fenced also runs the reaper (a lease on every grant).

``Faults`` injects the failures the brief's scenarios need, by request number (from 1, in the
order requests reach the server): a stall before the payload, a dropped connection instead of
the payload, and by granted request, a handler that dies mid-send (it never finalises: the
spec's wedge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from .errors import WireError
from .ring import RELEASE, SlotRing
from .wire import Kind, empty_record, parse_record, record

log = logging.getLogger("racefree.slot_ring.server")
IDLE_S = 120.0  # a connection with no request this long is closed (clients retire theirs at 100 s)


@dataclass(frozen=True)
class Faults:
    stall_s: float = 0.0      # seconds a stalled handler sleeps between OK and the payload
    stall_every: int = 0      # every k-th request stalls, if it is a reference's first attempt (0: none)
    drop_every: int = 0       # every k-th request's connection is dropped instead of the payload
    kill_after: int = 0       # the handler of the n-th granted request dies mid-send (0: none)
    late_commit_s: float = 0.0  # every stalled request also waits this long before its finaliser

    def stalls(self, n: int, attempt: int) -> bool:
        # a first attempt only: its retry then meets the stalled grant (re-entry, or BUSY)
        return self.stall_every > 0 and n % self.stall_every == 0 and self.stall_s > 0 and attempt == 0

    def drops(self, n: int) -> bool:
        return self.drop_every > 0 and n % self.drop_every == 0

    def kills(self, n: int) -> bool:
        return self.kill_after > 0 and n == self.kill_after


@dataclass
class ServerStats:
    requests: int = 0
    granted: int = 0
    stale: int = 0
    busy: int = 0
    committed: int = 0
    orphans: int = 0          # finalisers whose compare-and-set failed (no COMMIT)
    failed: int = 0
    bad_requests: int = 0
    killed: int = 0


async def close_endpoint(ep: Any, period_s: float, *, abort: bool = False) -> None:
    """Close ``ep`` within about ``period_s`` (ucxx waits up to 10 s by default)."""
    period = max(1, int(period_s * 1e9))
    try:
        if abort or ep.closed:
            ep.abort(period=period)
        else:
            await asyncio.wait_for(ep.close(period=period), period_s * 2)
    except Exception:  # noqa: BLE001 - a close that fails leaves nothing to do but abort
        with contextlib.suppress(Exception):
            ep.abort(period=period)


class SlotServer:
    """Listeners on ``ports`` free ports of ``host`` serving ``ring``; ``start`` returns the ports."""

    def __init__(self, ring: SlotRing, *, ports: int = 2, faults: Faults | None = None) -> None:
        self.ring = ring
        self.config = ring.config
        self.nports = ports
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self.ports: list[int] = []
        self._listeners: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> list[int]:
        import ucxx

        for _ in range(self.nports):
            lst = ucxx.create_listener(self._connection, port=0)
            self._listeners.append(lst)
            self.ports.append(lst.port)
        if self.config.fenced:
            self._reaper = asyncio.create_task(self._reap())
        return self.ports

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for lst in self._listeners:
            lst.close()
        self._listeners.clear()

    async def _reap(self) -> None:
        every = max(0.01, self.config.lease / 4)
        while True:
            await asyncio.sleep(every)
            self.ring.reclaim_expired()

    async def _connection(self, ep: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                req = empty_record()
                try:
                    await asyncio.wait_for(ep.recv(req), IDLE_S)
                except Exception:  # noqa: BLE001 - the client closed, or the connection idled out
                    break
                if not await self._request(ep, req):
                    return
            await close_endpoint(ep, self.config.close_s)
        except asyncio.CancelledError:
            await close_endpoint(ep, self.config.close_s, abort=True)
            raise
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _request(self, ep: Any, req: Any) -> bool:
        """Serve one request; whether the connection stays usable (False: it has been closed)."""
        st = self.stats
        try:
            _, slot, gen, hid, attempt = parse_record(req, (Kind.REQ,))
            grant = self.ring.accept(slot, gen, hid)
        except WireError as exc:
            st.bad_requests += 1
            log.warning("bad request, endpoint closed: %s", exc)
            with contextlib.suppress(Exception):  # the ERR is a courtesy
                await asyncio.wait_for(ep.send(record(Kind.ERR, 0, 0)), self.config.close_s)
            await close_endpoint(ep, self.config.close_s)
            return False
        st.requests += 1
        n = st.requests
        if grant.kind is not Kind.OK:
            if grant.kind is Kind.STALE:
                st.stale += 1
            else:
                st.busy += 1
            return await self._send_record(ep, record(grant.kind, slot, grant.gen))
        st.granted += 1
        return await self._serve(ep, n, hid, grant, self.faults.stalls(n, attempt), self.faults.kills(st.granted))

    async def _send_record(self, ep: Any, rec: Any) -> bool:
        try:
            await asyncio.wait_for(ep.send(rec), self.config.deadline_s)
            return True
        except Exception:  # noqa: BLE001 - the client is gone: nothing of the ring is held
            await close_endpoint(ep, self.config.close_s, abort=True)
            return False

    async def _serve(self, ep: Any, n: int, hid: int, grant: Any, stall: bool, die: bool) -> bool:
        ring, cfg, f = self.ring, self.config, self.faults
        slot, token = grant.slot, grant.token
        try:
            await asyncio.wait_for(ep.send(record(Kind.OK, slot, grant.gen, grant.nbytes, token)), cfg.deadline_s)
            if stall:
                await asyncio.sleep(f.stall_s)
            if die:  # mid-send: nothing more of this handler, ever (the spec's wedge)
                ring.send_start(hid, wedge=True)
                self.stats.killed += 1
                await close_endpoint(ep, cfg.close_s, abort=True)
                return False
            ring.send_start(hid)
            if f.drops(n):
                raise ConnectionResetError(f"fault injection: request {n}'s connection dropped")
            await asyncio.wait_for(ep.send(ring.view(slot, grant.nbytes)), cfg.deadline(grant.nbytes))
        except Exception as exc:  # noqa: BLE001 - any failure of the send is the spec's Fail
            self.stats.failed += 1
            log.info("request %d (handler %d) failed: %s", n, hid, exc or type(exc).__name__)
            owe = ring.fail(hid, slot)
            if stall and f.late_commit_s:
                await asyncio.sleep(f.late_commit_s)
            ring.finalise(hid, slot, token, owe)
            await close_endpoint(ep, cfg.close_s, abort=True)
            return False
        owe = ring.send_end(hid, slot)
        if stall and f.late_commit_s:
            await asyncio.sleep(f.late_commit_s)
        took = ring.finalise(hid, slot, token, owe)
        if cfg.fenced:
            if not took:  # an orphan: its grant was reclaimed; no COMMIT, so the client's attempt fails
                self.stats.orphans += 1
                await close_endpoint(ep, cfg.close_s, abort=True)
                return False
            self.stats.committed += 1
            return await self._send_record(ep, record(Kind.COMMIT, slot, grant.gen, grant.nbytes, token))
        if owe == RELEASE:  # pre_fix's KeyError after the chunk: a status-2 triple trails behind it
            for _ in range(3):
                if not await self._send_record(ep, record(Kind.ERR, slot, grant.gen)):
                    return False
        return True


def ucx_env() -> None:
    """TCP over loopback unless the user chose transports (the PyPI libucx has no IB/RoCE)."""
    os.environ.setdefault("UCX_TLS", "tcp")
    os.environ.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")

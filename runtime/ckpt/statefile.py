"""The machine's committed state on disk: two slots written in turn, each with a sequence and a CRC.

Every transition rewrites the state, so it must be cheap: a ``rename`` over an existing
file makes ext4 flush the new file's data first (~0.6 ms here), six times a step. Instead
each commit overwrites the older of two slot files in place with ``{"seq": k, ...}`` and a
CRC line, padded to a whole number of 4 KiB blocks and written by a single ``pwrite`` at
offset 0 (no ``ftruncate``), so a process killed mid-commit leaves either the old slot or
the new one, never a mix. Writers hold the run's flock.

A reader holding the flock takes the slot with the highest seq, and a damaged slot is an
error (``BadFile``), never a reason to fall back to the other one: the damaged slot may be
the newest commit, whose effects (a renamed step folder, a retired one) are already on disk,
and rolling the machine back under them would be a silent lie. A reader without the lock
(``peek``) can race a writer; it retries under the lock.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

from .errors import BadFile, DiskError

BLOCK = 4096


class StateFile:
    def __init__(self, root: Path) -> None:
        self.slots = (root / "PROTOCOL.0", root / "PROTOCOL.1")
        self._fds: dict[int, int] = {}

    def read(self) -> tuple[int, dict[str, Any]]:
        """(seq, state object) of the newest slot; BadFile when a slot is damaged or none exists."""
        best: tuple[int, dict[str, Any]] | None = None
        for path in self.slots:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # a run's first commit writes slot 0 only
            except OSError as exc:
                raise DiskError("read", path, exc) from None
            obj = _decode(data)
            if obj is None:
                raise BadFile(path, "damaged protocol state (garbage, truncated or a failed checksum)",
                              "it may hold the newest commit, so the older slot is not used in its place: "
                              "restore the folder from a backup, or start a new run")
            if best is None or obj["seq"] > best[0]:
                best = (obj["seq"], obj)
        if best is None:
            raise BadFile(self.slots[0], "missing: no protocol state",
                          "this folder holds no run (start one with the launcher)")
        return best

    def write(self, seq: int, obj: dict[str, Any]) -> None:
        """Overwrite slot seq % 2 (the older one) with one padded pwrite."""
        payload = json.dumps({**obj, "seq": seq}, sort_keys=True).encode()
        data = payload + b"\n%08x\n" % zlib.crc32(payload)
        data += b" " * (-len(data) % BLOCK)
        slot = seq % 2
        path = self.slots[slot]
        try:
            fd = self._fds.get(slot)
            if fd is None:
                fd = self._fds[slot] = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, data, 0)
        except OSError as exc:
            raise DiskError("write", path, exc) from None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _decode(data: bytes) -> dict[str, Any] | None:
    # payload (one JSON line) "\n" crc "\n" padding: the first newline ends the payload
    payload, sep, rest = data.partition(b"\n")
    crc = rest[:8]
    if not sep or len(crc) != 8 or rest[8:9] != b"\n":
        return None
    try:
        if int(crc, 16) != zlib.crc32(payload):
            return None
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("seq"), int) else None

"""The machine's committed state on disk: two slots written in turn, each with a sequence and a CRC.

Every transition rewrites the state, so it must be cheap: a ``rename`` over an existing
file makes ext4 flush the new file's data first (~0.6 ms here), six times a step. Instead
each commit overwrites the older of two slot files in place (``pwrite`` + ``ftruncate``)
with ``{"seq": k, ...}`` and a CRC line; a reader takes the valid slot with the highest
seq. A write cut short (a process killed mid-write, a reader racing the writer) fails
its CRC and the other slot, the previous commit, is used. Writers hold the run's flock.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

from .errors import BadFile, DiskError


class StateFile:
    def __init__(self, root: Path) -> None:
        self.slots = (root / "PROTOCOL.0", root / "PROTOCOL.1")
        self._fds: dict[int, int] = {}

    def read(self) -> tuple[int, dict[str, Any]]:
        """(seq, state object) of the newest valid slot; BadFile when neither slot is valid."""
        best: tuple[int, dict[str, Any]] | None = None
        problems = []
        for path in self.slots:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                problems.append(f"{path.name} missing")
                continue
            except OSError as exc:
                raise DiskError("read", path, exc) from None
            obj = _decode(data)
            if obj is None:
                problems.append(f"{path.name} torn or garbage")
            elif best is None or obj["seq"] > best[0]:
                best = (obj["seq"], obj)
        if best is None:
            raise BadFile(self.slots[0], "no valid protocol state (" + ", ".join(problems) + ")",
                          "this folder holds no run, or both state slots are damaged")
        return best

    def write(self, seq: int, obj: dict[str, Any]) -> None:
        """Overwrite slot seq % 2 (the older one) in place."""
        payload = json.dumps({**obj, "seq": seq}, sort_keys=True).encode()
        data = payload + b"\n%08x\n" % zlib.crc32(payload)
        slot = seq % 2
        path = self.slots[slot]
        try:
            fd = self._fds.get(slot)
            if fd is None:
                fd = self._fds[slot] = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError as exc:
            raise DiskError("write", path, exc) from None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _decode(data: bytes) -> dict[str, Any] | None:
    payload, sep, tail = data.rstrip(b"\n").rpartition(b"\n")
    if not sep or len(tail) != 8:
        return None
    try:
        if int(tail, 16) != zlib.crc32(payload):
            return None
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("seq"), int) else None

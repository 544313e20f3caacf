"""What travels on the wire and what sits in a slot: control records, the payload stamp, and a dict
of tensors packed as one buffer.

Control records are one fixed-size record of five int64s, ``(kind, slot, gen, nbytes, token)``,
for the request and for every reply (slot_ring.md §7): never a 1-byte status, so a record can
never be mistaken for the start of a payload, and a receive into a record-sized buffer can tell a
record from anything else by its kind. ``REQ``'s fourth field is the handler id the client chose
for the attempt (its ``nbytes`` slot; a request carries no size), its fifth the attempt's number
within the reference (its ``token`` slot; a request holds no token).

A payload in a slot is ``stamp · data · gen``: the stamp is ``(MAGIC, gen, nbytes)`` (nbytes of
the whole payload, stamp and trailer included) and the trailer repeats the generation, so a
client can check that the bytes it holds are the generation it asked for, whole (a write that
raced the send changes the trailer or the stamp).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

import numpy as np

from .errors import WireError

RECORD = np.dtype("<i8")
RECORD_WORDS = 5
MAGIC = 0x5246_5354_414D_5001  # "RFSTAMP\x01": differs from every record kind
STAMP_BYTES = 3 * 8
TRAILER_BYTES = 8
OVERHEAD = STAMP_BYTES + TRAILER_BYTES


class Kind(IntEnum):
    REQ = 1
    OK = 2
    STALE = 3
    BUSY = 4
    ERR = 5
    COMMIT = 6


def record(kind: Kind, slot: int, gen: int, nbytes: int = 0, token: int = 0) -> np.ndarray:
    """A fresh record buffer (UCXX sends from and receives into contiguous host arrays)."""
    return np.array([int(kind), slot, gen, nbytes, token], dtype=RECORD)


def empty_record() -> np.ndarray:
    """A buffer to receive a record into, every word -1: a shorter message completes the receive
    silently (UCX), and the words it did not reach stay negative, which no record has."""
    return np.full(RECORD_WORDS, -1, dtype=RECORD)


def parse_record(buf: np.ndarray, expect: tuple[Kind, ...]) -> tuple[Kind, int, int, int, int]:
    """The record in ``buf``, or WireError when its kind is not one of ``expect`` (a payload or
    a short message where a record belongs, a reply of the wrong kind)."""
    words = [int(x) for x in buf[:RECORD_WORDS]]
    try:
        kind = Kind(words[0])
    except ValueError:
        raise WireError(f"not a control record: kind word {words[0]:#x}") from None
    if kind not in expect:
        raise WireError(f"expected {'/'.join(k.name for k in expect)}, got {kind.name} {words[1:]}")
    if min(words[1:]) < 0:
        raise WireError(f"{kind.name} record with a negative field (a truncated message?): {words[1:]}")
    return kind, words[1], words[2], words[3], words[4]


def stamp_into(dst: np.ndarray, gen: int, nbytes: int) -> None:
    """Write the stamp at the start of ``dst`` (a uint8 view of the slot) and the trailer at nbytes."""
    dst[:STAMP_BYTES].view(RECORD)[:] = (MAGIC, gen, nbytes)
    dst[nbytes - TRAILER_BYTES:nbytes].view(RECORD)[0] = gen


def check_stamp(buf: np.ndarray, gen: int, nbytes: int) -> None:
    """WireError unless ``buf`` (uint8, nbytes long) is a whole payload of generation ``gen``."""
    if len(buf) < OVERHEAD or len(buf) != nbytes:
        raise WireError(f"payload of {len(buf)} bytes, expected {nbytes}")
    head = buf[:STAMP_BYTES].view(RECORD)
    if int(head[0]) != MAGIC:
        raise WireError(f"payload without the stamp (first word {int(head[0]):#x}: a record or junk)")
    tail = int(buf[nbytes - TRAILER_BYTES:nbytes].view(RECORD)[0])
    if (int(head[1]), int(head[2]), tail) != (gen, nbytes, gen):
        raise WireError(f"payload of generation {int(head[1])} ({int(head[2])} bytes, trailer {tail}), "
                        f"expected generation {gen} ({nbytes} bytes)")


def stamped_gen(buf: np.ndarray) -> int | None:
    """The generation a payload's stamp and trailer agree on, or None (torn, or not a payload)."""
    if len(buf) < OVERHEAD:
        return None
    head = buf[:STAMP_BYTES].view(RECORD)
    n = int(head[2])
    if int(head[0]) != MAGIC or n != len(buf):
        return None
    gen = int(head[1])
    return gen if int(buf[n - TRAILER_BYTES:n].view(RECORD)[0]) == gen else None


# ---------------------------------------------------------------- tensors <-> one buffer

_ALIGN = 64


def _as_numpy(t: Any) -> np.ndarray:
    if isinstance(t, np.ndarray):
        return np.ascontiguousarray(t)
    detach = getattr(t, "detach", None)
    if detach is not None:  # a torch tensor (host memory: the transport moves host bytes)
        return np.ascontiguousarray(detach().cpu().numpy())
    raise TypeError(f"payload values must be numpy arrays or torch tensors, not {type(t).__name__}")


def packed_layout(tensors: Mapping[str, Any]) -> tuple[bytes, list[tuple[np.ndarray, int]], int]:
    """The header bytes, each array with its offset in the data, and the data's size."""
    arrays = [(name, _as_numpy(t)) for name, t in tensors.items()]
    entries, placed, off = [], [], 0
    for name, a in arrays:
        off = -(-off // _ALIGN) * _ALIGN
        entries.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": off})
        placed.append((a, off))
        off += a.nbytes
    header = json.dumps(entries, separators=(",", ":")).encode()
    head = len(header).to_bytes(8, "little") + header
    pad = -(-len(head) // _ALIGN) * _ALIGN - len(head)
    return head + b"\0" * pad, placed, off


def pack_into(dst: np.ndarray, tensors: Mapping[str, Any]) -> int:
    """Pack ``tensors`` into ``dst`` (uint8); the bytes used. ValueError if they do not fit."""
    head, placed, size = packed_layout(tensors)
    total = len(head) + size
    if total > len(dst):
        raise ValueError(f"payload of {total} bytes does not fit a slot of {len(dst)} bytes")
    dst[:len(head)] = np.frombuffer(head, dtype=np.uint8)
    base = len(head)
    for a, off in placed:
        dst[base + off:base + off + a.nbytes] = a.reshape(-1).view(np.uint8)
    return total


def unpack(buf: np.ndarray, *, torch_tensors: bool = False) -> dict[str, Any]:
    """The dict ``pack_into`` packed (arrays viewing ``buf``); WireError on a malformed header."""
    try:
        n = int(buf[:8].view(np.int64)[0])
        entries = json.loads(bytes(buf[8:8 + n]))
        base = -(-(8 + n) // _ALIGN) * _ALIGN
        out: dict[str, Any] = {}
        for e in entries:
            dt = np.dtype(e["dtype"])
            count = int(np.prod(e["shape"], dtype=np.int64))
            start = base + int(e["offset"])
            a = buf[start:start + count * dt.itemsize].view(dt).reshape(e["shape"])
            if a.size != count:
                raise ValueError("array runs past the payload")
            out[e["name"]] = a
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise WireError(f"malformed packed payload: {exc}") from None
    if torch_tensors:
        import torch

        out = {k: torch.from_numpy(v) for k, v in out.items()}
    return out

"""What the slot-ring transport raises. A bad message costs its endpoint (closed, never pooled),
never the server."""

from __future__ import annotations


class TransportError(Exception):
    """Base of the transport's typed errors."""


class WireError(TransportError):
    """A message that breaks the wire format: a wrong kind, a wrong length, a record where a
    payload belongs, a payload whose stamp is not the generation asked for."""


class PayloadLost(TransportError):
    """The payload of a reference is gone and the loss is recorded: the server answered STALE (its
    slot was overwritten or recycled), or every attempt of the budget failed."""

    def __init__(self, gen: int, reason: str) -> None:
        super().__init__(f"payload {gen} lost: {reason}")
        self.gen = gen
        self.reason = reason

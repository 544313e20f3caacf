"""The cosmos-rl payload ring (slot_ring spec) as a transport: ``ring`` (POSIX shared memory and
the generated server machine), ``server`` (UCXX listeners, one handler per request, the reaper),
``client`` (the trainer side), ``wire`` (records, stamps, tensors packed as one buffer),
``demo`` (a writer process and trainer processes over UCXX loopback). docs/slots.md."""

from .client import ClientFaults, Payload, Ref, SlotClient
from .config import POLICIES, RingConfig
from .errors import PayloadLost, TransportError, WireError
from .ring import Grant, SlotRing, Written
from .server import Faults, SlotServer

__all__ = ["POLICIES", "ClientFaults", "Faults", "Grant", "Payload", "PayloadLost", "Ref", "RingConfig",
           "SlotClient", "SlotRing", "SlotServer", "TransportError", "WireError", "Written"]

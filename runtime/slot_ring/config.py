"""One transport's settings, and which machines each policy runs and is replayed against."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

POLICIES = ("pre_fix", "post_fix", "fenced")

# the server half the ring runs (spec/protocols/endless/slot_ring_server.rf), per policy
SERVER_MACHINES = {"pre_fix": "SlotServerPreFix", "post_fix": "SlotServerPostFix", "fenced": "SlotServerFenced"}
# the whole protocol (spec/protocols/slot_ring.rf) every process's trace is replayed against;
# fenced's reaper is lease-based, so its traces are checked against the weakened reclaim guard
SPEC_MACHINES = {"pre_fix": "SlotRingPreFix", "post_fix": "SlotRingPostFix", "fenced": "SlotRingFencedLeaseReaper"}
# generations and tokens are 64-bit counters: the server machine is built at this bound
ID_BOUND = 2**63 - 1


def protocols_dir() -> Path:
    import racefree.spec

    return Path(racefree.spec.__file__).resolve().parent / "protocols"


def server_spec() -> Path:
    return protocols_dir() / "endless" / "slot_ring_server.rf"


def protocol_spec() -> Path:
    return protocols_dir() / "slot_ring.rf"


@dataclass(frozen=True)
class RingConfig:
    policy: str = "fenced"
    slots: int = 4               # N: slots in the ring
    slot_bytes: int = 1 << 20    # capacity of one slot (stamp and trailer included)
    attempts: int = 2            # A: attempts per reference (one explicit budget, slot_ring.md §7)
    deadline_s: float = 5.0      # per-attempt deadline, plus nbytes / deadline_rate
    deadline_rate: float = 0.1e9  # bytes/s the deadline allows for the payload
    quarantine_s: float = 30.0   # a port that failed a first attempt is skipped this long
    lease_s: float = 0.0         # fenced: a grant older than this is reclaimed (0: deadline_s * 2)
    close_s: float = 0.5         # a bound on ep.close()
    connect_s: float = 5.0       # a new endpoint's connect timeout (ucxx's default)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.slots < 1 or self.attempts < 1:
            raise ValueError("need slots >= 1 and attempts >= 1")
        if self.slot_bytes < 64:
            raise ValueError("need slot_bytes >= 64")
        if min(self.deadline_s, self.deadline_rate, self.close_s, self.connect_s) <= 0 or min(self.quarantine_s, self.lease_s) < 0:
            raise ValueError("need deadline_s, deadline_rate, close_s, connect_s > 0 and quarantine_s, lease_s >= 0")

    @property
    def fenced(self) -> bool:
        return self.policy == "fenced"

    @property
    def server_machine(self) -> str:
        return SERVER_MACHINES[self.policy]

    @property
    def spec_machine(self) -> str:
        return SPEC_MACHINES[self.policy]

    @property
    def lease(self) -> float:
        """The reaper's lease: longer than a client's attempt deadline, so a live grant is only
        reclaimed on a wrong guess, which the token CAS and COMMIT keep safe."""
        return self.lease_s or 2 * self.deadline_s

    def deadline(self, nbytes: int) -> float:
        return self.deadline_s + nbytes / self.deadline_rate

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

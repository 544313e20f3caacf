"""One run's settings, and which generated machine each policy runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .errors import BadFile

POLICIES = ("pre_fix", "post_fix", "fenced")

# policy -> (machine without a resume, machine with one); None: the variant has no resume
MACHINES: dict[str, tuple[str, str | None]] = {
    "pre_fix": ("CkptPreFix", None),
    "post_fix": ("CkptPostFix", "CkptPostFixResumePrune"),  # #1857, plus #2219's prune on resume
    "fenced": ("CkptFenced", "CkptFenced"),
}

def spec_path() -> Path:
    """The bundled spec (package data next to ``racefree.spec``), wherever racefree is installed."""
    import racefree.spec

    return Path(racefree.spec.__file__).resolve().parent / "protocols" / "ckpt_retention.rf"


@dataclass(frozen=True)
class RunConfig:
    policy: str = "fenced"
    steps: int = 20            # steps the trainer publishes (fenced: when it calls finish; upstream: the S of the instance)
    readers: int = 1           # inference readers the orchestrator fans each load out to
    shards: int = 2            # shard files per step
    shard_mb: float = 1.0      # size of each shard
    keep_interval: int = 0     # I: every I-th step is an interval checkpoint, never retired (0: none)
    async_level: int = 1       # A: batches may run this many steps ahead of the loaded weights
    resume: bool = False       # the run will be resumed once (picks the variant with a resume)
    eval_reader: bool = True   # fenced: one eval reader pins and loads an old step
    lease_s: float = 10.0      # fenced: a reader that has not renewed its lease for this long is evicted

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.steps < 2 or self.readers < 1 or self.shards < 1 or self.shard_mb <= 0:
            raise ValueError("need steps >= 2, readers >= 1, shards >= 1 and shard_mb > 0")
        if self.keep_interval < 0 or self.async_level < 1:
            raise ValueError("need keep_interval >= 0 and async_level >= 1")
        if self.lease_s <= 0:
            raise ValueError("need lease_s > 0")
        if self.resume and MACHINES[self.policy][1] is None:
            raise ValueError(f"the {self.policy} variant has no resume in its spec")

    @property
    def machine(self) -> str:
        plain, resumable = MACHINES[self.policy]
        return resumable if self.resume and resumable else plain

    @property
    def fenced(self) -> bool:
        return self.policy == "fenced"

    @property
    def consts(self) -> dict[str, int]:
        """The machine's instance. The fenced machine does not depend on the run's length (its
        steps are a sliding window); the upstream ones are instances at S = steps."""
        if self.fenced:
            return {"A": self.async_level, "I": self.keep_interval, "M": self.readers}
        return {"S": self.steps, "A": self.async_level, "I": self.keep_interval}

    @property
    def window(self) -> int:
        """Fenced: the relative step numbers are 0..window (the spec's W = A + 3)."""
        return self.async_level + 3

    @property
    def disk_bound(self) -> int:
        """The spec's K: non-kept step folders (plus staging and trash) ever on disk."""
        return self.async_level + (4 if self.fenced else 3)

    @property
    def evals(self) -> bool:
        """Whether an eval reader runs (only the fenced variant has one)."""
        return self.eval_reader and self.fenced

    def kept(self, step: int) -> bool:
        return self.keep_interval > 0 and step > 0 and step % self.keep_interval == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, path: Path, obj: dict[str, Any]) -> RunConfig:
        names = {f.name for f in fields(cls)}
        if set(obj) - names:
            raise BadFile(path, f"unknown settings {sorted(set(obj) - names)}")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as exc:
            raise BadFile(path, str(exc)) from None

"""One scheduler run's settings, and which generated gpu_alloc machine each policy runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

POLICIES = ("pre_fix", "hooks_wired", "post_fix", "fenced")

MACHINES = {
    "pre_fix": "GpuAllocPreFix",          # rlix a8460a9: demand is only the queued GEN request
    "hooks_wired": "GpuAllocHooksWired",  # the real progress hooks, still no durable demand
    "post_fix": "GpuAllocPostFix",        # rlix#16 + miles#4: rollout_open_pipelines, signal_demand
    "fenced": "GpuAllocFencedEndless",    # the design racefree proves (F1-F7), for runs of any length
}


def spec_path(policy: str) -> Path:
    """The bundled spec of ``policy``'s machine (package data next to ``racefree.spec``), wherever
    racefree is installed: fenced runs the endless variant, in a file of its own."""
    import racefree.spec

    protocols = Path(racefree.spec.__file__).resolve().parent / "protocols"
    return protocols / "endless" / "gpu_alloc_endless.rf" if policy == "fenced" else protocols / "gpu_alloc.rf"


@dataclass(frozen=True)
class SchedConfig:
    policy: str = "fenced"
    pipelines: int = 2         # NP: pipelines sharing the pool
    gpus: int = 4              # NG: GPUs in the pool; pipeline p trains on the p-th of NP equal blocks
    rollouts: int | None = 3   # rollouts each pipeline runs, then it unregisters (fenced: None runs forever)
    poll_s: float = 1.0        # the planning loop's periodic wakeup (the brief's 1 s poll)
    signal_timeout_s: float = 60.0  # a blocking GEN request's timeout (post_fix gives up; fenced logs and waits)
    max_concurrency: int = 1000  # the actor's Ray max_concurrency (CAP): calls running in it at once
    resize_timeout_s: float = 10.0  # a pipeline must apply a resize within this, or the scheduler fails fast
    gpu_resource: str = "gpu_slot"  # the Ray resource one GPU is (on real GPUs: "GPU")

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.pipelines < 1 or (self.rollouts is not None and self.rollouts < 1):
            raise ValueError("need pipelines >= 1 and rollouts >= 1")
        if self.rollouts is None and self.policy != "fenced":
            raise ValueError(f"only fenced runs forever (rollouts=None): the {self.policy} spec is built at its R")
        if self.gpus < self.pipelines:
            raise ValueError(f"need at least one GPU per pipeline ({self.pipelines} pipelines, {self.gpus} GPUs)")
        if self.poll_s <= 0 or self.signal_timeout_s <= 0:
            raise ValueError("need poll_s > 0 and signal_timeout_s > 0")
        if self.max_concurrency < 1 or self.resize_timeout_s <= 0:
            raise ValueError("need max_concurrency >= 1 and resize_timeout_s > 0")
        if not self.gpu_resource.strip():
            raise ValueError("need a gpu_resource name (gpu_slot, or GPU on a GPU cluster)")

    @property
    def machine(self) -> str:
        return MACHINES[self.policy]

    @property
    def spec(self) -> Path:
        return spec_path(self.policy)

    @property
    def consts(self) -> dict[str, int]:
        """The machine's instance: the spec at this run's pipelines and GPUs, and (the upstream
        policies) rollouts. Fenced numbers rollouts in a window of its own R, whatever the run's
        length (GpuAllocFencedEndless: docs/sched.md)."""
        consts = {"NP": self.pipelines, "NG": self.gpus}
        if self.policy != "fenced":
            assert self.rollouts is not None
            consts["R"] = self.rollouts
        return consts

    @property
    def hooks(self) -> bool:
        """Whether rollouts send progress reports and clears (every policy but pre_fix)."""
        return self.policy != "pre_fix"

    @property
    def signals(self) -> bool:
        """Whether the train loop signals demand before each rollout (post_fix and fenced)."""
        return self.policy in ("post_fix", "fenced")

    @property
    def gen_at_init(self) -> bool:
        """Whether init ends with a blocking GEN request (every policy but fenced, which signals instead)."""
        return self.policy != "fenced"

    @property
    def blocking_slots(self) -> int | None:
        """F6: how many calls may block in the actor at once (None: no limit). Fenced keeps two
        of Ray's CAP slots for the calls that never block (release, report, clear, unregister),
        so a blocked call can never keep out the call that would unblock it (W8); a request
        beyond the limit is queued and answered "pending", and the handle polls for its grant.
        The upstream policies block without a limit, as upstream does."""
        return max(0, self.max_concurrency - 2) if self.policy == "fenced" else None

    def train_gpus(self, pid: int) -> list[int]:
        """TRAIN[p]: the GPUs of pipeline ``pid``'s train cluster (the spec's ``trainOf``)."""
        return [g for g in range(self.gpus) if g * self.pipelines // self.gpus == pid]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

"""The rlix GPU scheduler (gpu_alloc spec) as a runtime: ``core`` holds the generated machine and
the gap-ratio planner; ``actor`` runs it as a Ray asyncio actor; ``handle`` is what a training
loop calls; ``demo`` runs pipelines against it on a local Ray cluster."""

from .config import POLICIES, SchedConfig
from .core import SchedulerCore
from .errors import ContractViolation, ProtocolRefused, RequestTimeout, SchedError, UnknownPipeline

__all__ = ["POLICIES", "ContractViolation", "ProtocolRefused", "RequestTimeout", "SchedConfig", "SchedError",
           "SchedulerCore", "UnknownPipeline"]

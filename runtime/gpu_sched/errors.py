"""What the GPU scheduler raises. Every error leaves the scheduler's state as it was."""

from __future__ import annotations


class SchedError(Exception):
    """Base of the scheduler's typed errors."""


class UnknownPipeline(SchedError, ValueError):
    """A pipeline id the scheduler never registered, or a name registered twice."""


class ProtocolRefused(SchedError):
    """The generated machine does not allow this call now (a call out of the train loop's order,
    a report for a message never sent); nothing changed."""


class RequestTimeout(SchedError, TimeoutError):
    """A blocking request waited longer than its timeout. post_fix withdraws nothing (the request
    stays queued, as upstream); fenced keeps it queued and the pipeline may wait again."""


class ContractViolation(SchedError):
    """The planner's output broke the spec's planner contract and no floor move could repair it:
    the scheduler fails fast rather than commit an unchecked plan."""


class SchedulerUnresponsive(RequestTimeout):
    """The scheduler did not answer a call within the caller's deadline: it is hung (every one of
    its Ray slots held by a blocked call, the brief's W8) or gone. Raised by the handle."""


class ResizeFailed(SchedError):
    """A pipeline did not apply a resize of its ranks within ``resize_timeout_s``: the scheduler
    fails fast (its engines may still hold GPUs the scheduler has given to someone else), rather
    than let one wedged shrink stall every pipeline, as upstream's untimed resize does."""


class RequestCancelled(SchedError):
    """F5: a fenced signal waited past its ``max_wait_s``; the handle cancelled it by unregistering
    the pipeline (its demand, pin and GPUs dropped), so the pipeline must stop."""

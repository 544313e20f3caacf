"""The protocol state shared by the trainer, orchestrator and readers: the generated machine, under flock.

Every decision is a transition of the generated machine for the run's policy. The
machine's state lives in ``PROTOCOL.0``/``.1`` beside the steps (``statefile.py``); a transition is taken in
a ``transaction``: ``flock(LOCK)``, read the state, fire the action (its guard decides),
do the I/O the transition stands for, write the state back, release. If the guard
refuses, the I/O raises, or a monitored invariant breaks, nothing is written: the
transition did not happen and the next transaction starts from the last committed
state. Each committed transition is appended to the process's JSONL trace, so
``racefree replay`` can check the merged run against the spec afterwards.

The state is not fsynced: it survives any process crash (the page cache outlives the
process); a power loss is out of scope for this single-host runtime (documented).

Beside the machine's variables the state file holds what the machine leaves to the runtime
(fenced only): ``base``, the absolute step of the machine's relative step 0 (the window's
bottom; ``slide`` adds one), and ``epoch``, the run's resume count. Both are unbounded
integers, so a run's state does not grow with its length.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from racefree.codegen.instance import machine_class
from racefree.runtime.base import Recorder
from racefree.spec.ir import TMap, TSet

from .config import RunConfig, spec_path
from .errors import BadFile, ProtocolRefused
from .files import Layout, read_json
from .statefile import StateFile

RUN = "RUN.json"
# the transitions after which the step folders on disk may have grown (counted for the disk bound)
DISK_ACTIONS = frozenset({"publish_open", "publish_close", "send", "resume"})


class ProtocolStore:
    """One actor's handle on the shared machine (one per thread: each holds its own lock fd)."""

    def __init__(self, root: str | os.PathLike[str], *, actor: str, trace_dir: Path | None = None,
                 monitor: bool = False) -> None:
        self.layout = Layout(root)
        self.config = read_config(self.layout)
        self.cls = machine_class(spec_path(), self.config.machine, self.config.consts)
        self.machine: Any = self.cls(monitor=monitor)
        self.actor = actor
        self.recorder = Recorder.for_process(trace_dir, actor) if trace_dir is not None else None
        self._fired: list[tuple[str, tuple[Any, ...]]] = []
        self.machine.add_listener(lambda action, args: self._fired.append((action, args)))
        self._actions = {a.name: a for a in self.cls.ACTIONS}
        self._fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
        self.file = StateFile(self.layout.root)
        self._seq = -1          # the committed seq the machine holds
        self._dirty = True      # the machine may hold transitions that were not committed
        self.base = 0           # fenced: the absolute step of relative step 0
        self.epoch = 0          # fenced: resumes so far
        self.max_dirs = 0
        self.committed = 0

    def close(self) -> None:
        self.file.close()
        if self.recorder is not None:
            self.recorder.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ProtocolStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- state file
    def peek(self) -> Any:
        """The last committed state, read without the lock: good for deciding when to ask, not what.

        A slot that reads as damaged may be a commit being written: read it again under the lock,
        where a damaged slot is a real one (BadFile).
        """
        try:
            self.load()
        except BadFile:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self.load()
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return self.machine.snapshot()

    def absolute(self, v: int) -> int:
        """A machine step as the run's step number (the folder ``step_<N>``)."""
        return self.base + int(v)

    @property
    def seq(self) -> int:
        """The sequence number of the committed state this handle last read (grows with every commit)."""
        return self._seq

    def load(self) -> None:
        """Set the machine to the last committed state (inside a transaction for a decision).

        Decoding is skipped when the committed state is the one this machine already holds.
        """
        seq, obj = self.file.read()
        if seq == self._seq and not self._dirty:
            return
        if obj.get("machine") != self.cls.MACHINE or not isinstance(obj.get("state"), dict):
            raise BadFile(self.file.slots[seq % 2], f"not a {self.cls.MACHINE} state")
        values = obj["state"]
        base, epoch = obj.get("base", 0), obj.get("epoch", 0)
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (base, epoch)):
            raise BadFile(self.file.slots[seq % 2], f"bad state: base {base!r}, epoch {epoch!r}")
        try:
            self.machine.restore(tuple(_from_json(ty, values[name]) for name, ty in self.cls.VARS))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadFile(self.file.slots[seq % 2], f"bad state: {exc}") from None
        self.base, self.epoch = base, epoch
        self._seq, self._dirty = seq, False

    def save(self) -> None:
        self._seq += 1
        self.file.write(self._seq, state_object(self.machine, self.base, self.epoch))

    # -------------------------------------------------------------- transitions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """Hold the run's lock with the machine at the last committed state; commit what was fired."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self.load()
            self._fired.clear()
            self._dirty = True
            yield self.machine
            if self._fired:
                self.save()
                self.committed += len(self._fired)
                if self.recorder is not None:
                    for action, args in self._fired:
                        self.recorder.record(self._actions[action], args)
                    self.recorder.flush()  # in lock order, and nothing lost if this process is killed
                if any(a in DISK_ACTIONS for a, _ in self._fired):
                    self.max_dirs = max(self.max_dirs, self.layout.dirs_on_disk(self.config.keep_interval))
            self._dirty = False
        finally:
            self._fired.clear()
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take(self, m: Any, action: str, *args: Any) -> None:
        """Fire an action the caller expects to be enabled (inside a transaction)."""
        if not m.enabled(action, *args):
            raise ProtocolRefused(action, "its guard is false in the committed state")
        m.fire(action, *args)


# ------------------------------------------------------------------ (de)serialising

def _to_json(ty: Any, v: Any) -> Any:
    if isinstance(ty, TSet):
        return sorted(v)
    if isinstance(ty, TMap):
        return list(v)
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _from_json(ty: Any, v: Any) -> Any:
    if isinstance(ty, TSet):
        return frozenset(v)
    if isinstance(ty, TMap):
        return tuple(v)
    return v


def state_object(machine: Any, base: int = 0, epoch: int = 0) -> dict[str, Any]:
    values = dict(zip([n for n, _ in machine.VARS], machine.encoded(), strict=True))
    return {"machine": machine.MACHINE, "base": base, "epoch": epoch,
            "state": {name: _to_json(ty, values[name]) for name, ty in machine.VARS}}


def write_state(layout: Layout, machine: Any, seq: int = 0) -> None:
    """The first commit of a run (the launcher)."""
    f = StateFile(layout.root)
    try:
        f.write(seq, state_object(machine))
    finally:
        f.close()


def read_config(layout: Layout) -> RunConfig:
    path = layout.root / RUN
    obj = read_json(path, "written by the launcher when the run starts")
    if obj is None:
        raise BadFile(path, "missing: this folder holds no run (start one with the launcher)")
    return RunConfig.from_json(path, obj)


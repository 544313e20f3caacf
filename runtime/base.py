"""The hand-written half of every generated machine (DESIGN §5: keep the generated layer thin).

A generated module (``racefree gen``) holds what is specific to one machine: its
enums, its state attributes, and per action a method and a ``_t_<action>``
function that evaluates the spec's guard and, when asked, commits the update.
Everything else lives here, once: the lock, failed-guard policies
(``raise``/``ignore``/``wait`` and its asyncio flavour), invariant monitors,
listeners, snapshot/restore, and the JSONL event recorder.

Threading: one lock per machine. A transition (guard, update, monitor, recorder)
runs under it; listeners - user callbacks - run after it is released, so a
callback may call back into the machine.

This module must not import z3 (tests/test_contracts.py): trainers import it.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from racefree.spec.ir import TBool, TEnum, TInt, TMap, TOption, TSet, Ty, domain
from racefree.spec.pyexpr import Undefined, chk, chkset, co, ix

__all__ = ["DONE", "UNDEFINED", "BAD_ARGS", "EMPTY", "ActionInfo", "ArgumentError", "GuardRejected",
           "GuardTimeout", "InvariantViolated", "MachineBase", "Recorder", "RoleView", "Transition",
           "Undefined", "chk", "chkset", "co", "fset", "imax", "imin", "ix"]

# What a generated ``_t_<action>(..., commit)`` returns: DONE, or the index (>= 0) of the
# first failing conjunct of the guard, or one of these.
DONE = -1
UNDEFINED = -2  # a map key or an assigned value left its type: the spec says "not enabled"
BAD_ARGS = -3   # an argument outside its parameter's domain: the caller's mistake, never a guard

EMPTY: frozenset[Any] = frozenset()

T = TypeVar("T")

# Generated code calls these instead of frozenset/min/max: the same objects at run time, but
# with one signature each, because mypy re-checks the arguments of an overloaded call per
# overload - exponential in the nesting depth of gpu_alloc's expanded planner contract.
if TYPE_CHECKING:
    def fset(items: Iterable[Any], /) -> frozenset[Any]: ...

    def imin(a: int, b: int, /, *rest: int) -> int: ...

    def imax(a: int, b: int, /, *rest: int) -> int: ...
else:
    fset, imin, imax = frozenset, min, max

Policy = Literal["raise", "ignore", "wait"]


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """What the base needs to know about one action of a generated machine."""

    name: str
    role: str
    params: tuple[tuple[str, Ty], ...]
    policy: Policy
    conjuncts: tuple[str, ...]  # the guard's top-level conjuncts, as the spec writes them
    # Filled by MachineBase.__init_subclass__: the part of this action's event line that does
    # not change between events (machine, role, action, args) as a %-format of the arguments,
    # and how to show enum and bool arguments (None: all integers).
    tail_fmt: str = field(default="", compare=False)
    args_conv: tuple[Callable[[Any], object], ...] | None = field(default=None, compare=False)
    # Formatted tails by argument tuple: a machine's argument domains are small and repeat, so
    # most events format only seq and time. Bounded; process-independent (no pid), so a fork
    # may inherit it.
    tails: dict[tuple[Any, ...], str] = field(default_factory=dict, compare=False, repr=False)

    TAILS_KEPT: ClassVar[int] = 4096

    def event_tail(self, args: tuple[Any, ...]) -> str:
        """``"machine":..,"role":..,"action":..,"args":{..}`` of one event of this action, formatted
        and kept in ``tails`` (the recorder looks there first)."""
        conv = self.args_conv
        tail: str = self.tail_fmt % (args if conv is None else tuple(c(v) for c, v in zip(conv, args, strict=True)))
        if len(self.tails) < self.TAILS_KEPT:
            self.tails[args] = tail
        return tail

    def instances(self) -> Iterator[tuple[Any, ...]]:
        """Every argument tuple of the parameters' domains."""
        return itertools.product(*[domain(t) for _, t in self.params])

    def describe(self, code: int) -> str:
        if code >= 0:
            return self.conjuncts[code]
        return "well-defined (a map key or an assigned value would leave its declared type)"

    def show_args(self, args: tuple[Any, ...]) -> str:
        return ", ".join(f"{n}={_show(t, v)}" for (n, t), v in zip(self.params, args, strict=False))


def _args_format(info: ActionInfo) -> tuple[str, tuple[Callable[[Any], object], ...] | None]:
    parts, conv = [], []
    for name, ty in info.params:
        if isinstance(ty, TEnum):
            parts.append(f'"{name}":"%s"')
            conv.append(lambda v, ms=ty.members: ms[v])
        elif isinstance(ty, TBool):
            parts.append(f'"{name}":%s')
            conv.append(lambda v: "true" if v else "false")
        else:
            parts.append(f'"{name}":%d')
            conv.append(int)
    plain = all(isinstance(ty, TInt) for _, ty in info.params)
    return ",".join(parts), (None if plain else tuple(conv))


def _show(ty: Ty, v: Any) -> str:
    if isinstance(ty, TEnum) and isinstance(v, int) and 0 <= v < len(ty.members):
        return ty.members[v]
    return repr(v)


# ------------------------------------------------------------------ errors


class RuntimeProtocolError(Exception):
    """Base of the errors a generated machine raises."""


class ArgumentError(RuntimeProtocolError, ValueError):
    """An action was called with an argument outside its parameter's declared domain."""


class GuardRejected(RuntimeProtocolError):
    """A ``raise``-policy action was called while its guard was false."""

    def __init__(self, machine: str, info: ActionInfo, args: tuple[Any, ...], code: int) -> None:
        self.machine, self.action, self.arguments = machine, info.name, args
        self.conjunct = info.describe(code)
        shown = self.conjunct if len(self.conjunct) <= 240 else self.conjunct[:237] + "..."
        super().__init__(f"{machine}.{info.name}({info.show_args(args)}) rejected: requires {shown}")


class GuardTimeout(GuardRejected):
    """A ``wait``-policy action was not enabled before its timeout."""


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    args: tuple[Any, ...]


class InvariantViolated(RuntimeProtocolError, AssertionError):
    """The monitor found a spec invariant false right after a transition."""

    def __init__(self, machine: str, prop: str, recent: tuple[Transition, ...]) -> None:
        self.machine, self.property, self.recent = machine, prop, recent
        steps = "; ".join(f"{t.action}{t.args}" for t in recent)
        super().__init__(f"{machine}: invariant {prop} violated after: {steps}")


# ------------------------------------------------------------------ recorder

_time_ns = time.time_ns


class Recorder:
    """Writes each transition of the machines attached to it as one JSON line.

    ``{"seq", "time", "machine", "role", "action", "args", "pid"}``: ``seq`` counts this
    recorder's events (machines sharing a recorder under different locks may append them
    slightly out of order; replay orders each file by seq), ``time`` is wall-clock seconds
    (written as nanoseconds with an ``e-9`` exponent), ``args`` maps parameter names to
    values (enum members by name). Each process writes its own file (``for_process``);
    ``racefree replay`` merges them. Lines are buffered and written in batches: call
    ``close()`` (or use ``with``) to flush; an unclosed recorder flushes at exit.
    """

    BATCH = 4096

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._written = 0  # events numbered and written so far (seq counts from 1)
        self._times: list[int] = []
        self._tails: list[str] = []
        self._lock = threading.Lock()
        self._end = f',"pid":{os.getpid()}}}\n'
        _OPEN_RECORDERS.add(self)

    @classmethod
    def for_process(cls, directory: str | os.PathLike[str], stem: str = "events") -> Recorder:
        """A recorder writing ``<directory>/<stem>-<pid>.jsonl``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        return cls(d / f"{stem}-{os.getpid()}.jsonl")

    def record(self, info: ActionInfo, args: tuple[Any, ...]) -> None:
        # The hot path only looks up the event's cached tail (machine, role, action, args, pid)
        # and takes the time: it appends each to a list without a lock (list.append is atomic,
        # and the writer takes a prefix of the lists, see _write, so a concurrent append is
        # never lost; a race between the two appends is why the tails' length counts). seq and time are formatted when the buffer is drained, a batch at a
        # time, which is cheaper than one f-string per event (bench/generated_runtime.py).
        try:
            tail = info.tails[args]
        except KeyError:
            tail = info.event_tail(args)
        self._times.append(_time_ns())  # two lists of ints and strs: nothing the cyclic GC tracks
        tails = self._tails
        tails.append(tail)
        if len(tails) >= self.BATCH:
            with self._lock:
                self._write()

    def _write(self) -> None:
        """Drain the buffer into the file, numbering the events in buffer order; caller holds ``_lock``.

        "time" is written as integer nanoseconds times e-9, a JSON number of seconds, which
        saves the divmod a "%d.%09d" would need.
        """
        if self._file is None:
            raise ValueError(f"recorder {self.path} is closed")
        times, tails = self._times, self._tails
        n = len(tails)  # a time is appended before its tail: both lists hold at least n
        ts, ls = times[:n], tails[:n]
        del times[:n], tails[:n]  # one C call each: an append racing with the drain lands after n and stays
        first, end = self._written + 1, self._end
        self._written += n
        self._file.write("".join([f'{{"seq":{seq},"time":{t}e-9,{tail}{end}'
                                  for seq, t, tail in zip(range(first, first + n), ts, ls, strict=True)]))

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._write()
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._write()
                self._file.close()
                self._file = None
        _OPEN_RECORDERS.discard(self)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_OPEN_RECORDERS: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _flush_open_recorders() -> None:
    for r in list(_OPEN_RECORDERS):
        r.close()


# ------------------------------------------------------------------ machines


def state_attr(var: str) -> str:
    """The attribute holding a spec variable: a prefix no attribute of this module uses."""
    return f"_s_{var}"


M = TypeVar("M", bound="MachineBase")


class MachineBase:
    """State, lock and policies shared by all generated machines (subclasses add the spec)."""

    MACHINE: ClassVar[str]
    SPEC: ClassVar[str]
    VARS: ClassVar[tuple[tuple[str, Ty], ...]]
    ACTIONS: ClassVar[tuple[ActionInfo, ...]]
    INVARIANTS: ClassVar[tuple[str, ...]]
    ENUMS: ClassVar[dict[str, type]]
    RECENT = 16  # transitions kept for InvariantViolated while the monitor is on

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "ACTIONS" in cls.__dict__:
            cls._by_name = {a.name: a for a in cls.ACTIONS}
            for a in cls.ACTIONS:
                fmt, conv = _args_format(a)
                tail = f'"machine":"{cls.MACHINE}","role":"{a.role}","action":"{a.name}","args":{{{fmt}}}'
                object.__setattr__(a, "tail_fmt", tail)
                object.__setattr__(a, "args_conv", conv)
        # Per class, subclasses of a generated machine included (they may override a check).
        cls._inv_checks = tuple((name, getattr(cls, f"_inv_{name}")) for name in getattr(cls, "INVARIANTS", ()))

    _by_name: ClassVar[dict[str, ActionInfo]]
    # (name, unbound check) per invariant, looked up once per class: the monitor runs them all
    # after every transition.
    _inv_checks: ClassVar[tuple[tuple[str, Callable[[Any], bool]], ...]] = ()

    def __init__(self, *, monitor: bool = False, recorder: Recorder | None = None) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiters = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._monitor = monitor
        self._recorder = recorder
        self._recent: deque[Transition] = deque(maxlen=self.RECENT)
        self._listeners: list[Callable[[str, tuple[Any, ...]], None]] = []
        self._on_commit: Callable[[ActionInfo, tuple[Any, ...]], None] | None = None
        self._update_on_commit()

    # -------------------------------------------------------------- options
    @property
    def monitor(self) -> bool:
        return self._monitor

    @monitor.setter
    def monitor(self, on: bool) -> None:
        with self._lock:
            self._monitor = on
            self._recent.clear()
            self._update_on_commit()

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    @recorder.setter
    def recorder(self, rec: Recorder | None) -> None:
        with self._lock:
            self._recorder = rec
            self._update_on_commit()

    def add_listener(self, fn: Callable[[str, tuple[Any, ...]], None]) -> None:
        """Call ``fn(action, args)`` after each transition, outside the machine's lock."""
        self._listeners = [*self._listeners, fn]

    def remove_listener(self, fn: Callable[[str, tuple[Any, ...]], None]) -> None:
        self._listeners = [f for f in self._listeners if f is not fn]

    def _update_on_commit(self) -> None:
        # What a committed transition calls, under the lock (the generated fast path tests it
        # for None): nothing, the recorder alone (one call less on the hot path), or _observe.
        if self._monitor or self._waiters or self._async_waiters:
            self._on_commit = self._observe
        elif self._recorder is not None:
            self._on_commit = self._recorder.record
        else:
            self._on_commit = None

    # -------------------------------------------------------------- queries
    def domains(self, action: str) -> tuple[tuple[Any, ...], ...]:
        """Each parameter's values, in order (a runtime built at other sizes reads them here)."""
        return tuple(tuple(domain(t)) for _, t in self._info(action).params)

    def enabled(self, action: str, *args: Any) -> bool:
        """Whether ``action(*args)`` would be taken now (the spec's guard, well-definedness included)."""
        info = self._info(action)
        with self._lock:
            code = self._attempt(info)(*args, False)
        if code == BAD_ARGS:
            raise self._bad_args(info, args)
        return code == DONE

    def enabled_instances(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every enabled (action, arguments) pair, in spec order."""
        out = []
        with self._lock:
            for info in self.ACTIONS:
                attempt = self._attempt(info)
                for args in info.instances():
                    if attempt(*args, False) == DONE:
                        out.append((info.name, args))
        return out

    def violated_invariants(self) -> list[str]:
        with self._lock:
            return [name for name, check in self._inv_checks if not check(self)]

    def fire(self, action: str, *args: Any) -> bool:
        """Call an action by name (for replays and adapters driven by data)."""
        self._info(action)
        result = getattr(self, action)(*args)
        return bool(result)

    def _info(self, action: str) -> ActionInfo:
        try:
            return self._by_name[action]
        except KeyError:
            raise ArgumentError(f"{self.MACHINE} has no action {action!r}; "
                                f"actions: {', '.join(self._by_name)}") from None

    def _attempt(self, info: ActionInfo) -> Callable[..., int]:
        fn: Callable[..., int] = getattr(self, f"_t_{info.name}")
        return fn

    # -------------------------------------------------------------- snapshot
    def _values(self) -> list[Any]:
        """The state in the canonical encoding (a map as a tuple by key position); caller holds the lock."""
        out = []
        for name, ty in self.VARS:
            v = getattr(self, state_attr(name))
            out.append(tuple(v) if isinstance(ty, TMap) else v)
        return out

    def encoded(self) -> tuple[Any, ...]:
        """The state as the interpreter encodes it (equal to the generated snapshot)."""
        with self._lock:
            return tuple(self._values())

    def restore(self, state: tuple[Any, ...]) -> None:
        """Set the state from a snapshot (or any sequence in the canonical encoding); checked first."""
        if len(state) != len(self.VARS):
            raise ArgumentError(f"{self.MACHINE}: a state has {len(self.VARS)} values, got {len(state)}")
        decoded = []
        for (name, ty), v in zip(self.VARS, state, strict=True):
            try:
                decoded.append(self._decode(ty, v))
            except (TypeError, ValueError):
                raise ArgumentError(f"{self.MACHINE}: {v!r} is not a value of {name}: {ty}") from None
        with self._lock:
            for (name, ty), v in zip(self.VARS, decoded, strict=True):
                setattr(self, state_attr(name), list(v) if isinstance(ty, TMap) else v)
            self._cond.notify_all()

    def _decode(self, ty: Ty, v: Any) -> Any:
        match ty:
            case TBool() if isinstance(v, bool):
                return v
            case TInt(lo, hi) if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:  # type: ignore[operator]
                return v
            case TEnum(name, members) if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(members):
                return self.ENUMS[name](v)
            case TOption(base):
                return None if v is None else self._decode(base, v)
            case TSet(elem) if isinstance(v, set | frozenset):
                return frozenset(self._decode(elem, x) for x in v)
            case TMap(key, value) if isinstance(v, tuple | list) and len(v) == len(domain(key)):
                return tuple(self._decode(value, x) for x in v)
        raise ValueError(v)

    # -------------------------------------------------------------- transitions
    def _observe(self, info: ActionInfo, args: tuple[Any, ...]) -> None:
        """After a committed transition, under the lock: record, monitor, wake waiters."""
        if self._recorder is not None:
            self._recorder.record(info, args)
        if self._waiters:
            self._cond.notify_all()
        if self._async_waiters:
            for loop, fut in self._async_waiters:
                loop.call_soon_threadsafe(_resolve, fut)
            self._async_waiters.clear()
            self._update_on_commit()
        if self._monitor:
            self._recent.append(Transition(info.name, args))
            for name, check in self._inv_checks:
                if not check(self):
                    raise InvariantViolated(self.MACHINE, name, tuple(self._recent))

    def _after(self, info: ActionInfo, args: tuple[Any, ...]) -> None:
        """After the lock is released: user callbacks."""
        for fn in self._listeners:
            fn(info.name, args)

    def _bad_args(self, info: ActionInfo, args: tuple[Any, ...]) -> ArgumentError:
        return ArgumentError(f"{self.MACHINE}.{info.name}: argument outside its domain: {info.show_args(args)}")

    def _refused(self, info: ActionInfo, args: tuple[Any, ...], code: int) -> bool:
        """A raise/ignore-policy action whose guard failed (or whose arguments are bad)."""
        if code == BAD_ARGS:
            raise self._bad_args(info, args)
        if info.policy == "ignore":
            _log_ignored(self.MACHINE, info, args, code)
            return False
        raise GuardRejected(self.MACHINE, info, args, code)

    def _wait(self, info: ActionInfo, args: tuple[Any, ...], timeout: float | None) -> bool:
        """A wait-policy action: block until the guard holds, then take the transition."""
        attempt = self._attempt(info)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                code = attempt(*args, True)
                if code == DONE:
                    if self._on_commit is not None:
                        self._on_commit(info, args)
                    break
                if code == BAD_ARGS:
                    return self._refused(info, args, code)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise GuardTimeout(self.MACHINE, info, args, code)
                self._waiters += 1
                self._update_on_commit()
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiters -= 1
                    self._update_on_commit()
        if self._listeners:
            self._after(info, args)
        return True

    async def _wait_async(self, info: ActionInfo, args: tuple[Any, ...], timeout: float | None) -> bool:
        """The asyncio flavour of ``_wait``: awaits instead of blocking the event loop."""
        attempt = self._attempt(info)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                code = attempt(*args, True)
                if code == DONE:
                    if self._on_commit is not None:
                        self._on_commit(info, args)
                elif code == BAD_ARGS:
                    return self._refused(info, args, code)
                else:
                    # Registered under the lock: a transition after this attempt wakes us.
                    self._async_waiters.append((loop, fut))
                    self._update_on_commit()
            if code == DONE:
                break
            remaining = None if deadline is None else deadline - loop.time()
            try:
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                with self._lock:
                    self._async_waiters = [w for w in self._async_waiters if w[1] is not fut]
                    self._update_on_commit()
                raise GuardTimeout(self.MACHINE, info, args, code) from None
        if self._listeners:
            self._after(info, args)
        return True


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _log_ignored(machine: str, info: ActionInfo, args: tuple[Any, ...], code: int) -> None:
    import logging

    logging.getLogger(f"racefree.{machine}").debug("%s(%s) ignored: requires %s", info.name,
                                                   info.show_args(args), info.describe(code))


class RoleView(Generic[M]):
    """One role's face of a machine: only that role's actions (generated subclasses add them)."""

    def __init__(self, machine: M) -> None:
        self._machine = machine

    @property
    def machine(self) -> M:
        return self._machine

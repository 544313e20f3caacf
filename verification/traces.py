"""Checking recorded event traces against a spec (``racefree replay``).

Event files are what ``racefree.runtime.base.Recorder`` writes: one JSON object
per line with ``seq``, ``time``, ``machine``, ``role``, ``action``, ``args``, ``pid``.
Several files (one per process) are merged by ``time``, each file keeping its
own order, and replayed through the interpreter from the initial state. The
result is the first event that is not enabled in the spec, or the first event
after which an invariant is false, with the events before it.

Speed: states are interned to small integers and both the transition
``(state, action, args) -> state`` and each state's invariant verdict are
cached, so a long trace over a small state space costs about one JSON parse and
one dict lookup per event.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racefree.spec import errors, ir
from racefree.spec.interp import Interpreter
from racefree.spec.ir import TBool, TEnum, TInt
from racefree.spec.printer import show_expr
from racefree.spec.values import State

# (time, file index, line number, seq, action, encoded args, pid)
Event = tuple[float, int, int, int, str, tuple[Any, ...], int]


@dataclass
class ReplayResult:
    machine: ir.Machine
    events: int                          # events replayed (including the failing one)
    states: int                          # distinct states visited
    outcome: str                         # "ok" | "not_enabled" | "invariant"
    failing: Event | None = None
    failing_conjunct: str | None = None
    prop: str | None = None
    before: list[Event] = field(default_factory=list)
    state: State | None = None           # the state before a refused event / after a violating one
    files: list[str] = field(default_factory=list)
    # with keep_going: every invariant that broke, with the number of the first event breaking it
    violations: list[tuple[str, int]] = field(default_factory=list)


def _bad(path: str, line: int, message: str, hint: str | None = None) -> errors.SpecError:
    return errors.bad_trace(errors.Loc(path, line, 1), message, hint)


class _Decoder:
    """JSON argument objects -> the interpreter's encoded argument tuples, per action."""

    def __init__(self, m: ir.Machine) -> None:
        self.params = {a.name: [(p.name, p.ty) for p in a.params] for a in m.actions}
        self.machine = m

    def decode(self, action: str, args: Any, path: str, line: int) -> tuple[Any, ...]:
        params = self.params.get(action)
        if params is None:
            raise _bad(path, line, f"{self.machine.name} has no action '{action}'",
                       f"actions: {', '.join(self.params)}")
        if not isinstance(args, dict) or set(args) != {n for n, _ in params}:
            raise _bad(path, line, f"'args' of {action} must be an object with keys "
                                   f"{', '.join(n for n, _ in params) or '(none)'}")
        return tuple(self._value(ty, args[n], action, n, path, line) for n, ty in params)  # type: ignore[arg-type]

    def _value(self, ty: ir.Ty, v: Any, action: str, name: str, path: str, line: int) -> Any:
        match ty:
            case TBool() if isinstance(v, bool):
                return v
            case TInt(lo, hi) if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:  # type: ignore[operator]
                return v
            case TEnum(_, members) if isinstance(v, str) and v in members:
                return members.index(v)
        raise _bad(path, line, f"argument {name}={json.dumps(v)} of {action} is not a value of {ty}")


def read_events(paths: list[Path], m: ir.Machine | None, spec: ir.SpecFile) -> tuple[ir.Machine, list[list[Event]]]:
    """Parse every file (all errors are the user's: SpecError with file:line), choosing the machine."""
    machines = {x.name: x for x in spec.machines}
    streams: list[list[Event]] = []
    decoder: _Decoder | None = _Decoder(m) if m is not None else None
    fast: dict[str, tuple[str, tuple[Any, ...], int]] = {}
    others: set[str] = set()  # machines whose events --machine skipped
    for fi, path in enumerate(paths):
        shown = str(path)
        try:
            fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise errors.unreadable_file(errors.Loc(shown, 1, 1), exc.strerror or str(exc)) from None
        events: list[Event] = []
        ln = 0
        try:
            for ln, text in enumerate(fh, 1):
                # Fast path for the recorder's own format: everything after "time" (machine, role,
                # action, args, pid) repeats across events, so it is parsed and decoded once.
                j = text.find(',"machine":')
                tail = text[j:] if j > 0 else None
                hit = fast.get(tail) if tail is not None else None
                if hit is not None and text.startswith('{"seq":'):
                    i = text.find(',"time":')
                    try:
                        seq, t = int(text[7:i]), float(text[i + 8:j])
                    except ValueError:
                        hit = None
                if hit is None:
                    if not text.strip():
                        continue
                    seq, t, name, action, args, pid = _parse(text, shown, ln)
                    if decoder is None:
                        if name not in machines:
                            raise _bad(shown, ln, f"event of machine '{name}', which {spec.path} does not define",
                                       f"machines: {', '.join(machines)}")
                        decoder = _Decoder(machines[name])
                    if name != decoder.machine.name:
                        if m is None:
                            raise _bad(shown, ln, f"event of machine '{name}' in a trace of "
                                                  f"'{decoder.machine.name}'", "pick one with --machine")
                        hit = _SKIP  # --machine chose one machine of a shared file
                        others.add(name)
                    else:
                        hit = (action, decoder.decode(action, args, shown, ln), pid)
                    if tail is not None:
                        fast[tail] = hit
                if hit is _SKIP:
                    continue
                events.append((t, fi, ln, seq, hit[0], hit[1], hit[2]))
        except UnicodeDecodeError as exc:
            raise _bad(shown, ln + 1, f"not a UTF-8 text file ({exc.reason})",
                       "racefree replay reads the JSONL files a Recorder wrote") from None
        finally:
            fh.close()
        events.sort(key=_by_seq)  # already sorted unless machines shared a recorder (nearly: Timsort)
        for prev, ev in itertools.pairwise(events):
            if prev[3] == ev[3]:
                raise _bad(shown, ev[2], f"seq {ev[3]} also on line {prev[2]}: one file is one recorder's events")
        streams.append(events)
    if not any(streams):  # replaying nothing would report a conforming run: never a false green
        where = errors.Loc(str(paths[0]) if paths else "<none>", 1, 1)
        if others:
            assert m is not None
            raise errors.nothing_to_check(where, f"no event of machine '{m.name}' in these files",
                                          f"their events name {', '.join(sorted(others))}")
        raise errors.nothing_to_check(where, "no events in these files", "replay the files a run recorded")
    assert decoder is not None
    return decoder.machine, streams


def _by_seq(e: Event) -> int:
    return e[3]


_SKIP: tuple[str, tuple[Any, ...], int] = ("", (), 0)
_SHAPE = 'an event is {"seq", "time", "machine", "role", "action", "args", "pid"}'


def _parse(text: str, path: str, line: int) -> tuple[int, float, str, str, Any, int]:
    try:
        e = json.loads(text)
        if not isinstance(e, dict):
            raise _bad(path, line, f"not a JSON event object: a JSON {type(e).__name__}", _SHAPE)
        seq, t, name, action, args, pid = e["seq"], e["time"], e["machine"], e["action"], e["args"], e["pid"]
    except KeyError as exc:
        raise _bad(path, line, f"event without the field {exc}", _SHAPE) from None
    except (ValueError, TypeError) as exc:
        raise _bad(path, line, f"not a JSON event object: {exc}", _SHAPE) from None
    if not (isinstance(seq, int) and isinstance(t, int | float) and isinstance(pid, int)
            and isinstance(name, str) and isinstance(action, str)):
        raise _bad(path, line, "seq and pid must be integers, time a number, machine and action strings")
    return seq, float(t), name, action, args, pid


def merged(streams: list[list[Event]]) -> Iterator[Event]:
    """One sequence: by time across files, each file's own order kept (heapq.merge is stable)."""
    if len(streams) == 1:
        return iter(streams[0])
    return heapq.merge(*streams, key=lambda e: e[0])


def replay(m: ir.Machine, events: Iterator[Event], *, context: int = 10,
           progress: Callable[[int], None] | None = None, keep_going: bool = False,
           skew: float = 0.0) -> ReplayResult:
    """Replay to the first refused event or broken invariant; ``keep_going`` replays past broken
    invariants (not past a refused event) and lists every property that broke.

    ``skew`` (seconds) is how far the clocks of different files' events may disagree with their
    real order: a sender records "sent" once its send completed, and the receiver may have
    recorded the receive a moment before. A refused event is then retried after the first event
    of another file, no later than ``skew`` after it, that is enabled (each file's own order is
    always kept). 0: events are taken strictly by time."""
    interp = Interpreter(m)
    step = interp.step
    invariants = list(interp.invariants.items())
    ids: dict[State, int] = {interp.init: 0}
    states: list[State] = [interp.init]
    verdicts: list[tuple[str, ...]] = [_violated(invariants, interp.init)]
    table: dict[tuple[int, str, tuple[Any, ...]], int] = {}
    recent: list[Event] = []
    first: ReplayResult | None = None
    seen: dict[str, int] = {}
    cur = 0
    n = 0
    if verdicts[0]:
        return ReplayResult(m, 0, 1, "invariant", None, prop=verdicts[0][0], state=interp.init,
                            violations=[(p, 0) for p in verdicts[0]])
    ahead = _Lookahead(events, skew)
    for ev in ahead:
        n += 1
        key = (cur, ev[4], ev[5])
        nxt = table.get(key)
        if nxt is None:
            st = step(states[cur], ev[4], ev[5])
            if st is None and skew > 0:
                swapped = ahead.swap(ev, lambda e, at=states[cur]: step(at, e[4], e[5]) is not None)
                if swapped is not None:
                    ev, key = swapped, (cur, swapped[4], swapped[5])
                    st = step(states[cur], ev[4], ev[5])
            if st is None:
                refused = ReplayResult(m, n, len(states), "not_enabled", ev, _failing_conjunct(interp, states[cur], ev),
                                       before=recent[-context:], state=states[cur])
                return _finish(refused, seen)  # a refused event outranks an earlier broken invariant
            nxt = ids.get(st)
            if nxt is None:
                nxt = ids[st] = len(states)
                states.append(st)
                verdicts.append(_violated(invariants, st))
            table[key] = nxt
        cur = nxt
        if verdicts[cur]:
            if first is None:
                first = ReplayResult(m, n, len(states), "invariant", ev, prop=verdicts[cur][0],
                                     before=recent[-context:], state=states[cur])
            for prop in verdicts[cur]:
                seen.setdefault(prop, n)
            if not keep_going:
                return _finish(first, seen)
        recent.append(ev)
        if len(recent) > 4 * context:
            del recent[:-context]
        if progress is not None and n % 100_000 == 0:
            progress(n)
    if first is not None:
        first.states = len(states)
        return _finish(first, seen)
    return ReplayResult(m, n, len(states), "ok", state=states[cur])


class _Lookahead:
    """The merged events, with a window of those to come for ``replay``'s skew."""

    def __init__(self, events: Iterator[Event], skew: float) -> None:
        self._events = events
        self._skew = skew
        self._buf: list[Event] = []

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> Event:
        return self._buf.pop(0) if self._buf else next(self._events)

    def swap(self, refused: Event, enabled: Callable[[Event], bool]) -> Event | None:
        """The first event to come within the skew, at the head of another file, that is enabled;
        ``refused`` goes back to be taken right after it."""
        limit = refused[0] + self._skew
        while not self._buf or self._buf[-1][0] <= limit:
            nxt = next(self._events, None)
            if nxt is None:
                break
            self._buf.append(nxt)
        heads: set[int] = {refused[1]}
        for i, e in enumerate(self._buf):
            if e[0] > limit:
                break
            if e[1] in heads:
                continue
            heads.add(e[1])
            if enabled(e):
                del self._buf[i]
                self._buf.insert(0, refused)
                return e
        return None


def _finish(r: ReplayResult, seen: dict[str, int]) -> ReplayResult:
    r.violations = sorted(seen.items(), key=lambda kv: kv[1])
    return r


def _violated(invariants: list[tuple[str, Callable[[State], bool]]], st: State) -> tuple[str, ...]:
    return tuple(name for name, holds in invariants if not holds(st))


def _failing_conjunct(interp: Interpreter, state: State, ev: Event) -> str | None:
    """For the report only: the first conjunct of the refused action's guard that is false."""
    a = interp.machine.action(ev[4])
    names = [p.name for p in a.params]
    for c in ir.conjuncts(a.requires):
        if not interp.param_pred(c, names)(state, *ev[5]):
            return show_expr(c)
    return None  # every conjunct holds: a map key or an assigned value would leave its type

"""Generated-runtime benchmark: the cost of one transition, and racefree replay's throughput.

    python bench/generated_runtime.py             # 200k transitions per variant, replay of 1M events
    python bench/generated_runtime.py --quick     # smaller

The workload is the Slots example (3 writers, 6 slots): claim, finalise, consume
in a cycle, every call enabled. Baselines run in the same process:
- a hand-written Python class with the same state, a lock and the same guards;
- the same slot lifecycle in the `transitions` library (plain and LockedMachine).
Each figure is the median of --repeat runs; the table prints ratios. Markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from racefree.runtime.base import Recorder
from racefree.runtime.generated.slots import Slots, SlotState
from racefree.spec.loader import load_file
from racefree.verification import traces

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "examples" / "slots.rf"
W, S = 3, 6


class HandWritten:
    """What one would write by hand: the same state and guards under a lock, no checks beyond them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = [SlotState.FREE] * S
        self.owner: list[int | None] = [None] * S
        self.fin: list[frozenset[int]] = [frozenset()] * S

    def claim(self, w: int, s: int) -> bool:
        with self._lock:
            if self.state[s] != SlotState.FREE:
                raise RuntimeError("claim: slot not free")
            self.state[s] = SlotState.WRITING
            self.owner[s] = w
        return True

    def finalise(self, w: int, s: int) -> bool:
        with self._lock:
            if self.state[s] != SlotState.WRITING or self.owner[s] != w:
                raise RuntimeError("finalise: not the writer")
            self.state[s] = SlotState.READY
            self.fin[s] = self.fin[s] | {w}
        return True

    def consume(self, s: int) -> bool:
        with self._lock:
            if self.state[s] != SlotState.READY:
                raise RuntimeError("consume: not ready")
            self.state[s] = SlotState.FREE
            self.fin[s] = frozenset()
            self.owner[s] = None
        return True


def cycle(m: object, n: int) -> None:
    claim, finalise, consume = m.claim, m.finalise, m.consume  # type: ignore[attr-defined]
    for i in range(n):
        s, w = i % S, i % W
        claim(w, s)
        finalise(w, s)
        consume(s)


class _SlotModel:
    def __init__(self) -> None:
        self.owner: int | None = None
        self.fin: frozenset[int] = frozenset()

    def set_owner(self, w: int) -> None:
        self.owner = w

    def is_owner(self, w: int) -> bool:
        return self.owner == w

    def add_fin(self, w: int) -> None:
        self.fin = self.fin | {w}

    def reset(self) -> None:
        self.owner, self.fin = None, frozenset()


def transitions_slots(locked: bool) -> list[_SlotModel]:
    from transitions import Machine
    from transitions.extensions import LockedMachine

    cls = LockedMachine if locked else Machine
    models = []
    for _ in range(S):
        model = _SlotModel()
        cls(model=model, states=["FREE", "WRITING", "READY"], initial="FREE", auto_transitions=False,
            transitions=[{"trigger": "claim", "source": "FREE", "dest": "WRITING", "before": "set_owner"},
                         {"trigger": "finalise", "source": "WRITING", "dest": "READY", "conditions": "is_owner",
                          "before": "add_fin"},
                         {"trigger": "consume", "source": "READY", "dest": "FREE", "before": "reset"}])
        models.append(model)
    return models


def cycle_transitions(models: list[_SlotModel], n: int) -> None:
    for i in range(n):
        s, w = i % S, i % W
        m = models[s]
        m.claim(w)  # type: ignore[attr-defined]
        if not m.finalise(w):  # type: ignore[attr-defined]
            raise RuntimeError("finalise refused")
        m.consume()  # type: ignore[attr-defined]


def per_transition(variants: list[tuple[str, Callable[[], None], int]], repeat: int) -> list[tuple[str, float]]:
    """Median microseconds per transition of each (name, run, transitions), the runs interleaved
    round-robin so that a slow spell of this shared machine hits every variant alike."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(repeat):
        for name, run, transitions in variants:
            t = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t) / transitions * 1e6)
    return [(name, statistics.median(times[name])) for name, _, _ in variants]


def transition_table(n: int, repeat: int) -> list[tuple[str, float]]:
    tmp = Path(tempfile.mkdtemp())

    def recorded() -> None:
        with Recorder(tmp / "events.jsonl") as rec:
            cycle(Slots(recorder=rec), n)

    small = max(n // 10, 1)
    return per_transition([
        ("hand-written, with a lock (baseline)", lambda: cycle(HandWritten(), n), 3 * n),
        ("generated, bare", lambda: cycle(Slots(), n), 3 * n),
        ("generated, recorder on (incl. writing the file)", recorded, 3 * n),
        ("generated, monitor on", lambda: cycle(Slots(monitor=True), n), 3 * n),
        ("`transitions` Machine", lambda: cycle_transitions(transitions_slots(False), small), 3 * small),
        ("`transitions` LockedMachine", lambda: cycle_transitions(transitions_slots(True), small), 3 * small),
    ], repeat)


def lock_idioms(n: int, repeat: int) -> tuple[float, float]:
    """Microseconds per empty critical section: ``with lock`` and acquire/try/finally/release.

    The generated methods use the second; the hand-written baseline the first, as people write it.
    """
    lock = threading.Lock()

    def with_lock() -> None:
        for _ in range(n):
            with lock:
                pass

    def acquire_release() -> None:
        for _ in range(n):
            lock.acquire()
            try:
                pass
            finally:
                lock.release()

    (_, with_us), (_, acquire_us) = per_transition([("with", with_lock, n), ("acquire", acquire_release, n)],
                                                   repeat)
    return with_us, acquire_us


def write_trace(path: Path, events: int) -> None:
    with Recorder(path) as rec:
        cycle(Slots(recorder=rec), events // 3)


def replay_rate(path: Path) -> tuple[float, float, int]:
    """(replay events/s, json.loads-only lines/s, events) on one trace file."""
    spec = load_file(SPEC)
    t = time.perf_counter()
    machine, streams = traces.read_events([path], None, spec)
    result = traces.replay(machine, traces.merged(streams))
    replay_s = time.perf_counter() - t
    assert result.outcome == "ok", result.outcome
    t = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)
    parse_s = time.perf_counter() - t
    return result.events / replay_s, result.events / parse_s, result.events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = 10_000 if args.quick else 66_667
    rows = transition_table(n, args.repeat)
    base = rows[0][1]
    bare = rows[1][1]
    print("| variant | us / transition | vs hand-written | vs generated bare | added to bare, in bares |")
    print("|---|---:|---:|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} | {us / base:.2f}x | {us / bare:.2f}x | {(us - bare) / bare:.2f}x |")
    with_us, acquire_us = lock_idioms(3 * n, args.repeat)
    print(f"\nAn empty critical section: `with lock:` {with_us:.2f} us, "
          f"`lock.acquire()` + try/finally `release()` {acquire_us:.2f} us.")
    events = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"
        write_trace(path, events)
        rate, parse_rate, count = replay_rate(path)
    print(f"\n| replay | events | events/s | vs json.loads alone |\n|---|---:|---:|---:|\n"
          f"| racefree replay (Slots) | {count:,} | {rate:,.0f} | {rate / parse_rate:.2f}x |")


if __name__ == "__main__":
    main()

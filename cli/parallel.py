"""`racefree check`: machines checked side by side, each in a process forked for it.

Every machine is checked in a child forked from this process, which has loaded the specs and
never run Z3: so each machine starts from the same state whatever ran before it, and its
verdicts, methods and traces are the same however many machines run at once (``--jobs``) and
in whatever order they finish. Each child sends its results and diagnostics back through a
queue as it finds them; they are yielded in the machines' order, each as soon as it and
everything before it is known, so ``--json`` streams as it did. The children ignore SIGINT:
Ctrl-C interrupts this process, which stops them (only the children it started, by their
process objects) and lets KeyboardInterrupt through to the caller's partial report.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from racefree.spec import ir
from racefree.verification.interrupts import stop_if_interrupted

# What checking one machine yields: ("result", Result) or ("note", Finding); and what it is
# given to report progress with.
Check = Callable[[ir.Machine, Callable[[str], None]], Iterator[tuple[str, Any]]]
POLL_S = 0.2  # how often the parent looks for a child that died without a word, and for Ctrl-C
PROGRESS_EVERY_S = 0.25


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def check_machines(machines: list[ir.Machine], check: Check, jobs: int,
                   progress: Callable[[str], None]) -> Iterator[tuple[int, str, Any]]:
    """(machine index, kind, item) for every result and note, in machine order."""
    if "fork" not in multiprocessing.get_all_start_methods():  # Windows: one machine after another, here
        for i, m in enumerate(machines):
            for kind, item in check(m, progress):
                yield i, kind, item
        return
    ctx = multiprocessing.get_context("fork")
    inbox: Any = ctx.Queue()
    running: dict[int, Any] = {}
    buffered: dict[int, list[tuple[str, Any]]] = {}
    finished: set[int] = set()
    exited: set[int] = set()
    started = shown = 0
    try:
        while shown < len(machines):
            while len(running) < max(1, jobs) and started < len(machines):
                child = ctx.Process(target=_child, args=(started, machines[started], check, inbox),
                                    name=f"racefree-check-{machines[started].name}", daemon=True)
                child.start()
                running[started] = child
                started += 1
            try:
                i, kind, item = inbox.get(timeout=POLL_S)
            except queues.Empty:
                stop_if_interrupted()
                for i, child in running.items():
                    # gone without "done" or "crash" (killed from outside), and nothing more came in
                    # a whole poll after it exited
                    if child.exitcode is not None and i in exited:
                        raise RuntimeError(f"checking {machines[i].name} stopped (exit code {child.exitcode})") from None
                    if child.exitcode is not None:
                        exited.add(i)
                continue
            if kind == "progress":
                progress(item)
            elif kind == "crash":
                raise RuntimeError(f"checking {machines[i].name} failed:\n{item}")
            elif kind == "done":
                running.pop(i).join()
                finished.add(i)
            else:
                buffered.setdefault(i, []).append((kind, item if kind != "result" else replace(item, machine=machines[i])))
            while shown < len(machines) and (shown in buffered or shown in finished):
                for kind, item in buffered.pop(shown, []):
                    yield shown, kind, item
                if shown not in finished:
                    break
                shown += 1
    finally:
        for child in running.values():
            child.terminate()
        for child in running.values():
            child.join(2)
            if child.is_alive():
                child.kill()
                child.join()
        inbox.close()


def _child(i: int, m: ir.Machine, check: Check, outbox: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    signal.set_wakeup_fd(-1)  # the parent's Ctrl-C watcher reads that pipe

    last = 0.0

    def progress(message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:  # the parent redraws one status line; no need to flood it
            outbox.put((i, "progress", message))
            last = now

    try:
        for kind, item in check(m, progress):
            # the machine stays here: the parent has it, and it is the largest part of a result
            outbox.put((i, kind, replace(item, machine=None) if kind == "result" else item))
        outbox.put((i, "done", None))
    except BaseException:
        outbox.put((i, "crash", traceback.format_exc()))
    finally:
        outbox.close()
        outbox.join_thread()

"""``racefree demo ckpt``: the whole checkpoint system on this machine, in real processes.

A trainer publishing ``steps`` steps, an orchestrator (main loop + poll task), ``readers``
inference readers loading with ``lag``, and (fenced) an eval reader, each a
``racefree.runtime.ckpt.worker`` process on one broadcast folder. With ``resume_at`` the
first run is stopped once the trainer is two steps past it (SIGTERM while the launcher
holds the run's lock, so no transaction is cut in half, but shard writes and loads are), the launcher
resumes from ``resume_at``, and a second set of workers finishes the run. The CLI then
replays the merged traces through the spec (``racefree replay``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import CkptError
from .launcher import create_run, resume_run, run_lock
from .store import ProtocolStore


@dataclass
class DemoOptions:
    lag: float = 0.0              # each reader sleeps this long after being asked (and across shards)
    reader_lags: tuple[float, ...] | None = None  # per reader (cycled), instead of ``lag``
    eval_lag: float = 1.0
    train_s: float = 0.05         # one training step
    rollout_s: float = 0.02       # generating one batch
    resume_at: int | None = None
    timeout: float = 120.0
    monitor: bool = False
    kill_after: tuple[int, int] | None = None   # fault injection: SIGKILL the trainer after (step, shard)
    absent_readers: tuple[int, ...] = ()         # fenced: readers of the run the demo never starts


@dataclass
class DemoRun:
    config: RunConfig
    root: Path
    traces: Path
    seconds: float = 0.0
    stats: list[dict[str, Any]] = field(default_factory=list)
    exit_codes: dict[str, int] = field(default_factory=dict)
    final: Any = None
    final_step: int = 0          # the trainer's last step, as the run's step number
    started: float = field(default_factory=time.perf_counter)
    resumed: dict[str, Any] | None = None   # what the resume removed
    stopped: set[str] = field(default_factory=set)  # workers the demo stopped on purpose (for the resume)

    def total(self, key: str) -> int:
        return sum(int(s.get(key, 0)) for s in self.stats)

    @property
    def max_dirs(self) -> int:
        return max((int(s["max_dirs"]) for s in self.stats), default=0)

    @property
    def errors(self) -> list[str]:
        return [e for s in self.stats for e in s["errors"]]

    @property
    def finished(self) -> bool:
        """The machine reached the end of the run it was asked for: every step trained and every
        batch shipped, with no crash (the spec's ``terminal finished``, minus its crash case)."""
        f = self.final
        if f is None or f.tpc.name != "DONE":
            return False
        if self.config.fenced:
            return bool(f.finished) and self.final_step == self.config.steps
        return not f.crashed and f.s == self.config.steps

    def failed_workers(self) -> dict[str, str]:
        """Each worker that did not end its loop normally, and why (its exit, then its last log line).

        A worker the demo stopped on purpose for the resume is not a failure; one it stopped
        because another had failed is listed with that reason.
        """
        failed = {k: code for k, code in self.exit_codes.items() if code != 0 and k not in self.stopped}
        first = [k for k, code in failed.items() if code not in STOPPED]
        out = {}
        for key, code in failed.items():
            if code in STOPPED:
                out[key] = f"stopped by the demo after {', '.join(first) or 'the run'} failed"
                continue
            why = EXIT_REASONS.get(code) or (f"killed by signal {signal.Signals(-code).name}" if code < 0
                                             else f"exited with status {code}")
            last = _last_line(self.root / "logs" / f"{key}.log")
            out[key] = why + (f": {last}" if last else "")
        return out


STOPPED = (143, -signal.SIGTERM)  # the demo's SIGTERM (the worker's handler exits 143)
EXIT_REASONS = {3: "stopped on an error", 124: "timed out", -signal.SIGKILL: "killed by SIGKILL"}


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def run_demo(config: RunConfig, root: Path, options: DemoOptions,
             progress: Callable[[str], None] | None = None) -> DemoRun:
    """Run the system to its end (or a worker's timeout); every process is started and stopped here."""
    run = start_run(config, root)
    if options.resume_at is not None:
        stop = min(config.steps, options.resume_at + 2)
        run_until(run, options, stop_when=lambda snap: snap.n >= stop, progress=progress)
        run.resumed = resume_run(root, options.resume_at, trace_dir=run.traces)
    run_until(run, options, progress=progress)
    return finish(run)


def start_run(config: RunConfig, root: Path) -> DemoRun:
    create_run(root, config)
    return DemoRun(config, root, root / "traces")


def run_until(run: DemoRun, options: DemoOptions, *, stop_when: Callable[[RunView], bool] | None = None,
              progress: Callable[[str], None] | None = None) -> None:
    """One set of workers, until they all exit; with ``stop_when``, kill them all (a crash) once it
    holds of the committed state (never with a step half-published), or once the trainer died."""
    phase = str(sum(1 for k in run.exit_codes if k.startswith("trainer")) + 1)
    procs = _start(run, options, phase)
    try:
        with ProtocolStore(run.root, actor="watch") as watch:
            while any(p.poll() is None for p in procs.values()):
                snap = watch.peek()
                if progress is not None:
                    progress(_line(run.config, snap, watch.base, watch.layout.dirs_on_disk(run.config.keep_interval)))
                reached = stop_when is not None and stop_when(view(snap, watch.base)) and snap.tpc.name != "PUB"
                trainer_gone = stop_when is not None and procs["trainer"].poll() is not None
                # a dead trainer or orchestrator stops the run (the others would wait); a dead
                # fenced reader does not: its lease runs out and it is evicted
                failed = any(p.poll() not in (None, 0) for name, p in procs.items()
                             if not (run.config.fenced and name.startswith(("reader", "eval"))))
                if reached or trainer_gone or failed:
                    with run_lock(watch.layout):  # no worker is inside a transaction: kill them all
                        running = [name for name, p in procs.items() if p.poll() is None]
                        _kill(procs)
                    if reached and not failed:
                        run.stopped.update(f"{name}{phase}" for name in running)
                    break
                time.sleep(0.05)
    finally:
        _kill(procs)
    for name, p in procs.items():
        run.exit_codes[f"{name}{phase}"] = p.returncode


@dataclass(frozen=True)
class RunView:
    """A committed state in the run's step numbers (the fenced machine's are relative to its base)."""

    n: int
    s: int
    c: int
    LS: int | None
    present: frozenset[int]
    tpc: str


def view(snap: Any, base: int) -> RunView:
    return RunView(base + snap.n, base + snap.s, base + snap.c, None if snap.LS is None else base + snap.LS,
                   frozenset(base + v for v in snap.present), snap.tpc.name)


def finish(run: DemoRun) -> DemoRun:
    with ProtocolStore(run.root, actor="report") as store:
        run.final = store.peek()
        run.final_step = store.absolute(run.final.n)
    run.stats = [json.loads(p.read_text()) for p in sorted((run.root / "stats").glob("*.json"))]
    run.seconds = time.perf_counter() - run.started
    return run


def _start(run: DemoRun, options: DemoOptions, phase: str) -> dict[str, subprocess.Popen[bytes]]:
    cfg = run.config
    common = ["--root", str(run.root), "--traces", str(run.traces), "--stats", str(run.root / "stats"),
              "--timeout", str(options.timeout)] + (["--monitor"] if options.monitor else [])
    specs: dict[str, list[str]] = {}
    lags = options.reader_lags or (options.lag,)
    for i in range(cfg.readers):
        if i in options.absent_readers:
            continue
        specs[f"reader{i}"] = ["reader", "--name", f"reader{i}", "--lag", str(lags[i % len(lags)])]
    if cfg.evals and phase == "1":  # the spec's eval reader reads at most once, before any resume
        specs["eval"] = ["eval", "--lag", str(options.eval_lag)]
    specs["orchestrator"] = ["orchestrator", "--rollout-s", str(options.rollout_s)]
    trainer = ["trainer", "--train-s", str(options.train_s)]
    if options.kill_after is not None and phase == "1":
        trainer += ["--kill-after", f"{options.kill_after[0]}:{options.kill_after[1]}"]
    specs["trainer"] = trainer
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    log = run.root / "logs"
    log.mkdir(exist_ok=True)
    try:
        for name, argv in specs.items():
            with open(log / f"{name}{phase}.log", "wb") as out:
                procs[name] = subprocess.Popen([sys.executable, "-m", "racefree.runtime.ckpt.worker", *argv, *common],
                                               stdout=out, stderr=subprocess.STDOUT, env=env)
            if name.startswith("reader"):
                _wait_registered(run.root, name, procs[name])
    except BaseException:  # a reader that did not start, or Ctrl-C: no worker outlives the launcher
        _kill(procs)
        raise
    return procs


def _wait_registered(root: Path, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Readers register before the orchestrator can ask them anything (a fan-out counts them)."""
    path = root / "consumers" / f"{name}.json"
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise CkptError(f"{name} did not start (see {root / 'logs'})")
        time.sleep(0.02)


def _kill(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop only the processes this demo started, by pid: SIGTERM (they write their stats and
    exit), SIGKILL for any still there after 10 s."""
    for p in procs.values():
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def _line(cfg: RunConfig, snap: Any, base: int, dirs: int) -> str:
    width = 24
    n, s, c = (base + v for v in (snap.n, snap.s, snap.c))
    done = min(width, int(width * n / cfg.steps))
    state = "crashed" if not cfg.fenced and snap.crashed else f"loaded {c}"
    return f"[{'#' * done}{'.' * (width - done)}] step {n}/{cfg.steps}  batch {s}  {state}  dirs {dirs}"

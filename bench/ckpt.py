"""Checkpoint runtime benchmark: protocol bookkeeping per step, and the disk bound in a real run.

    python bench/ckpt.py              # 1 MiB and 64 MiB state dicts, 12 steps each; demo runs
    python bench/ckpt.py --quick      # smaller

Bookkeeping: one fenced trainer step in this process (ship, train, publish: stage, write
the shards, manifest, rename under the lock; clean; purge), with a load of the newest step
by one reader between steps (not timed). The step's time outside its data I/O (see
``protocol_steps``) is the protocol's: flock, reading and writing the machine state, the
guards, the manifest and its fsync, the epoch check, the staging folder, the retire renames. The
baseline, in the same run, is the bare path a trainer without racefree takes: torch.save
and fsync of the same shards into a temporary folder, one rename, and an ``rmtree`` of the
step two behind (it has to bound its disk too). The digest is
reported on its own (computed while a shard is written; part of the data I/O).

Disk bound: ``racefree demo ckpt --policy fenced --lag 0.5`` in real processes; the
largest number of non-kept step folders (+ staging + trash) ever on disk against the
spec's K = A + 3 + E. The pre_fix run is shown for contrast.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from racefree.runtime.ckpt import files, trainer
from racefree.runtime.ckpt.config import RunConfig
from racefree.runtime.ckpt.inprocess import InProcessRun

_DATA: dict[tuple[int, float], dict] = {}
_MAKE = trainer.state_dict


def data(n: int, shard: int, mb: float) -> dict:
    """The same tensors for the bare path and the protocol (made once: their creation is not I/O)."""
    key = (shard, mb)
    if key not in _DATA:
        _DATA[key] = _MAKE(n, shard, mb)
    return _DATA[key]


def bare_step(folder: Path, n: int, shards: int, shard_mb: float) -> float:
    """torch.save + fsync of each shard into a tmp folder, fsync it, rename; delete the step two
    behind (a trainer bounds its disk with or without racefree): seconds."""
    t0 = time.perf_counter()
    tmp = folder / f"tmp_{n}"
    tmp.mkdir()
    for j in range(shards):
        with open(tmp / files.shard_name(j), "wb") as f:
            torch.save(data(n, j, shard_mb), f)
            f.flush()
            os.fsync(f.fileno())
    files.fsync_dir(tmp)
    os.rename(tmp, folder / f"step_{n}")
    files.fsync_dir(folder)
    if n > 2:
        files.remove_tree(folder / f"step_{n - 2}")
    return time.perf_counter() - t0


def protocol_steps(root: Path, steps: int, shards: int, shard_mb: float,
                   state_sizes: list[int] | None = None) -> list[tuple[float, float, float, float]]:
    """Per step: (trainer total, time in the data I/O, sha256 of the shards, other fsyncs), seconds.

    Data I/O, timed around the calls that do it: ``save_shard`` (torch.save, the sha256
    computed on the way, fsync), the publish rename with its fsync (``Trainer._close``),
    and the purge's ``rmtree`` of retired shards. The protocol's own fsyncs (MANIFEST.json
    and the staging folder) are timed apart. The rest of the step is bookkeeping.
    """
    run = InProcessRun(root, RunConfig(policy="fenced", steps=steps + 1, shards=shards, shard_mb=shard_mb,
                                       eval_reader=False))
    slots = run.trainer.store.file.slots
    io = [0.0, 0.0, 0.0]
    depth = [0]

    def timed(fn: Callable[..., Any], digest: bool = False, slot: int = 0) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            if depth[0]:  # an fsync inside save_shard or _close: already in the data I/O
                return fn(*args)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                out = fn(*args)
            finally:
                depth[0] -= 1
            io[slot] += time.perf_counter() - t0
            if digest:  # the sha256 share of save_shard: hash the same bytes again (not in the step)
                t1 = time.perf_counter()
                hashlib.sha256(Path(args[0]).read_bytes()).hexdigest()
                io[1] += time.perf_counter() - t1
            return out
        return wrapper

    patches = {(trainer, "save_shard"): timed(files.save_shard, digest=True),
               (trainer, "remove_tree"): timed(files.remove_tree),
               (trainer.Trainer, "_close"): timed(trainer.Trainer._close),
               (os, "fsync"): timed(os.fsync, slot=2),
               (trainer, "state_dict"): data}
    saved = {k: getattr(*k) for k in patches}
    for (owner, name), fn in patches.items():
        setattr(owner, name, fn)
    out = []
    try:
        run.trainer.clean()
        for _ in range(steps):
            io[:] = [0.0, 0.0, 0.0]
            t0 = time.perf_counter()
            run.trainer_step()
            total = time.perf_counter() - t0 - io[1]
            out.append((total, io[0], io[1], io[2]))
            run.load_newest()  # not the trainer's time (its fsyncs come after the step is read off)
            if state_sizes is not None:  # the committed state's bytes (the slot file is padded to 4 KiB)
                state_sizes.append(max(len(p.read_bytes().rstrip(b" ")) for p in slots))
    finally:
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)
        run.close()
    return out


def bookkeeping_row(mb: float, steps: int, shards: int = 2) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        (base / "bare").mkdir()
        bare = [bare_step(base / "bare", n, shards, mb / shards) for n in range(1, steps + 1)]
        proto = protocol_steps(base / "run", steps, shards, mb / shards)
    keep = slice(1, None) if steps > 2 else slice(None)  # the first step warms caches
    return {"mb": mb, "bare_ms": statistics.median(bare[keep]) * 1e3,
            "step_ms": statistics.median(t for t, _, _, _ in proto[keep]) * 1e3,
            "bookkeeping_ms": statistics.median(t - io - fs for t, io, _, fs in proto[keep]) * 1e3,
            "fsync_ms": statistics.median(fs for _, _, _, fs in proto[keep]) * 1e3,
            "digest_ms": statistics.median(h for _, _, h, _ in proto[keep]) * 1e3}


def long_run(steps: int) -> dict[str, float]:
    """A fenced run of ``steps`` small steps in one process: the bookkeeping per step and the
    committed state's size near its start (steps 10-19) and its end (the last 10 steps)."""
    sizes: list[int] = []
    with tempfile.TemporaryDirectory() as d:
        proto = protocol_steps(Path(d) / "run", steps, 2, 0.005, sizes)
    book = [(t - io - fs) * 1e3 for t, io, _, fs in proto]
    return {"steps": steps, "early_ms": statistics.median(book[10:20]), "late_ms": statistics.median(book[-10:]),
            "early_bytes": max(sizes[10:20]), "late_bytes": max(sizes[-10:])}


def demo(policy: str, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "racefree.cli.main", "demo", "ckpt", "--policy", policy,
                          "--lag", "0.5", "--steps", str(steps), "--json"], capture_output=True, text=True,
                         check=False)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps = 4 if args.quick else 12
    sizes = (1.0, 8.0) if args.quick else (1.0, 64.0)
    print("| state dict | bare save+fsync+rename+delete | racefree fenced step | step / bare "
          "| of which bookkeeping (target <= 5 ms) | manifest + staging fsyncs | sha256 of the shards |")
    print("|---|---|---|---|---|---|---|")
    for mb in sizes:
        r = bookkeeping_row(mb, steps)
        print(f"| {mb:g} MiB | {r['bare_ms']:.1f} ms | {r['step_ms']:.1f} ms | {r['step_ms'] / r['bare_ms']:.2f}x "
              f"| {r['bookkeeping_ms']:.2f} ms | {r['fsync_ms']:.2f} ms | {r['digest_ms']:.1f} ms |")
    print()
    r = long_run(100 if args.quick else 1000)
    print(f"| fenced run of {r['steps']} steps (0.01 MiB) | steps 10-19 | last 10 steps |")
    print("|---|---|---|")
    print(f"| bookkeeping per step (median) | {r['early_ms']:.2f} ms | {r['late_ms']:.2f} ms |")
    print(f"| committed state (bytes) | {r['early_bytes']:.0f} | {r['late_bytes']:.0f} |")
    print()
    print("| policy (--lag 0.5) | steps published | load failures | max step folders on disk | bound K | replay |")
    print("|---|---|---|---|---|---|")
    for policy in ("fenced", "pre_fix"):
        r = demo(policy, 8 if args.quick else 20)
        print(f"| {policy} | {r['steps_published']} | {r['load_failures']} | {r['max_step_dirs_on_disk']} "
              f"| {r['disk_bound']} | {r['replay']} |")


if __name__ == "__main__":
    main()

"""``racefree demo ckpt``: run the checkpoint system in real processes, then replay its traces."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from racefree.spec import ir
from racefree.spec.loader import load_instance

from . import render


def add_demo_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="run a seed system end to end on this machine")
    which = d.add_subparsers(dest="system", required=True)
    c = which.add_parser("ckpt", help="trainer, orchestrator and readers sharing checkpoint folders (torch files)",
                         description="Runs a trainer publishing torch state dicts, an orchestrator and readers "
                                     "in real processes under one policy, then replays their JSONL traces "
                                     "through the spec. Exit 0: the run finished every step, every worker ended "
                                     "normally, no load failed and the replay conforms; 1: otherwise (the report "
                                     "says which worker failed and why); 2: bad options.")
    c.add_argument("--policy", choices=["pre_fix", "post_fix", "fenced"], default="fenced",
                   help="the retention rule, from its generated spec variant (default fenced)")
    c.add_argument("--steps", type=int, default=20, help="steps the trainer publishes (default 20)")
    c.add_argument("--readers", type=int, default=1, help="inference readers each load fans out to (default 1)")
    c.add_argument("--lag", type=float, default=0.0, help="seconds each reader lags after being asked (default 0)")
    c.add_argument("--shard-mb", type=float, default=1.0, help="MiB per shard file (default 1)")
    c.add_argument("--shards", type=int, default=2, help="shard files per step (default 2)")
    c.add_argument("--keep-interval", type=int, default=0, help="keep every I-th step forever (default 0: none)")
    c.add_argument("--async-level", type=int, default=1, help="batches may run this far ahead of the weights")
    c.add_argument("--resume-at", type=int, default=None,
                   help="kill the run two steps past this interval checkpoint and resume from it")
    c.add_argument("--train-s", type=float, default=0.05, help="seconds per training step (default 0.05)")
    c.add_argument("--no-eval", action="store_true", help="fenced: no eval reader")
    c.add_argument("--monitor", action="store_true", help="check every spec invariant after each transition")
    c.add_argument("--dir", type=Path, default=None, help="broadcast folder (default: a temporary one, removed)")
    c.add_argument("--lease", type=float, default=10.0,
                   help="fenced: seconds a reader may go without renewing its lease before it is evicted (default 10)")
    c.add_argument("--timeout", type=float, default=120.0, help="seconds any worker may wait while the run stands still; "
                   "the clock restarts on every committed transition (default 120)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON object")
    c.set_defaults(func=cmd_demo_ckpt)


def cmd_demo_ckpt(args: argparse.Namespace) -> int:
    from racefree.runtime.ckpt.config import RunConfig
    from racefree.runtime.ckpt.demo import DemoOptions, run_demo
    from racefree.runtime.ckpt.errors import CkptError

    from .main import Progress

    try:
        config = RunConfig(policy=args.policy, steps=args.steps, readers=args.readers, shards=args.shards,
                           shard_mb=args.shard_mb, keep_interval=args.keep_interval, async_level=args.async_level,
                           resume=args.resume_at is not None, eval_reader=not args.no_eval, lease_s=args.lease)
        if args.resume_at is not None and not (config.kept(args.resume_at) and args.resume_at + 2 <= args.steps):
            raise ValueError("--resume-at must be a multiple of --keep-interval, at least 2 steps before --steps")
    except ValueError as exc:
        print(f"racefree demo ckpt: {exc}", file=sys.stderr)
        return 2
    if args.dir is not None and args.dir.exists() and not args.dir.is_dir():
        print(f"racefree demo ckpt: --dir {args.dir} exists and is not a folder", file=sys.stderr)
        return 2
    temp = None if args.dir else Path(tempfile.mkdtemp(prefix="racefree-ckpt-"))
    root = args.dir or temp / "broadcasts"  # type: ignore[operator]
    options = DemoOptions(lag=args.lag, train_s=args.train_s, resume_at=args.resume_at, timeout=args.timeout,
                          monitor=args.monitor)
    progress = Progress(not args.json)
    try:
        run = run_demo(config, root, options, progress=progress)
        report = ckpt_report(run)
    except CkptError as exc:
        progress.clear()
        print(f"racefree demo ckpt: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the workers are stopped by run_demo; what this run created goes too
        progress.clear()
        print("racefree demo ckpt: interrupted" + (f"; the folder {root} is kept" if temp is None else ""),
              file=sys.stderr)
        return 130
    finally:
        progress.clear()
        if temp is not None:  # pass --dir to keep the folder and its traces
            shutil.rmtree(temp, ignore_errors=True)
    if temp is not None:
        report["dir"] = report["replay_command"] = None
    if args.json:
        print(json.dumps(report))
    else:
        print(_text(report))
    return 0 if report["ok"] else 1


def ckpt_report(run: Any) -> dict[str, Any]:
    """The demo's result, with the merged traces replayed through the machine the run used."""
    from racefree.runtime.ckpt.config import spec_path
    from racefree.verification import traces

    cfg = run.config
    m = load_instance(spec_path(), cfg.machine, cfg.consts)
    paths = sorted(run.traces.glob("*.jsonl"))
    _, streams = traces.read_events(paths, m, ir.SpecFile(str(spec_path()), (m,)))
    counts: dict[str, int] = {}
    for stream in streams:
        for ev in stream:
            counts[ev[4]] = counts.get(ev[4], 0) + 1
    result = traces.replay(m, traces.merged(streams), keep_going=True)
    report: dict[str, Any] = {
        "policy": cfg.policy,
        "steps": cfg.steps,
        "steps_published": counts.get("publish_close", 0),
        "steps_loaded": counts.get("load_done", 0),
        "load_failures": run.total("load_failures"),
        "torn_reads": run.total("torn_reads"),
        "max_step_dirs_on_disk": run.max_dirs,
        "disk_bound": cfg.disk_bound,
        "replay": "ok" if result.outcome == "ok" else "violation",
        "seconds": round(run.seconds, 2),
        "machine": cfg.machine,
        "consts": cfg.consts,
        "events": sum(len(s) for s in streams),
        "crashed": bool(not cfg.fenced and run.final.crashed),
        "evictions": sorted(e for st in run.stats for e in st.get("evictions", []) if st["actor"] == "orchestrator"),
        "divergences": run.total("divergences"),
        "errors": run.errors,
        "completed": run.finished,
        "failed_workers": run.failed_workers(),
        "dir": str(run.root),
        "replay_command": (f"racefree replay {spec_path()} --machine {cfg.machine} "
                           + " ".join(f"--const {k}={v}" for k, v in cfg.consts.items())
                           + f" {run.traces}/*.jsonl"),
    }
    report["ok"] = bool(report["completed"] and not report["failed_workers"] and report["load_failures"] == 0
                        and report["torn_reads"] == 0 and report["replay"] == "ok")
    if result.outcome != "ok":
        report["replay_property"] = result.prop  # None when an event was not enabled at all
        report["replay_violations"] = [p for p, _ in result.violations]
        report["replay_detail"] = render.replay_report(result, [str(p) for p in paths])
    return report


def _text(r: dict[str, Any]) -> str:
    lines = [
        f"policy {r['policy']} ({r['machine']}, {', '.join(f'{k}={v}' for k, v in r['consts'].items())}), "
        f"{r['seconds']} s" + ("  - the orchestrator crashed" if r["crashed"] else ""),
        f"  steps published {r['steps_published']}, loads completed {r['steps_loaded']}",
        f"  load failures {r['load_failures']}, torn reads {r['torn_reads']}",
        f"  step folders on disk: at most {r['max_step_dirs_on_disk']} (the spec's bound K = {r['disk_bound']})",
        f"  replay of {r['events']} events: {r['replay']}",
    ]
    if not r["completed"]:
        lines.append(f"  the run did not finish: {r['steps_published']} of {r['steps']} steps published")
    for worker, why in r["failed_workers"].items():
        lines.append(f"  worker {worker}: {why}")
    if r["replay"] != "ok":
        lines.append(f"  properties violated: {', '.join(r['replay_violations'])}; the first:")
        lines.append("    " + r["replay_detail"].replace("\n", "\n    "))
    for e in r["errors"][:5]:
        lines.append(f"  error: {e}")
    if r["dir"]:
        lines.append(f"  folder: {r['dir']}\n  replay again: {r['replay_command']}")
    return "\n".join(lines)

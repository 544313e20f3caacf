"""``racefree demo ckpt`` and ``racefree demo sched``: run a seed system end to end, then replay its traces."""

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
    g = which.add_parser("sched", help="pipelines sharing a GPU pool through the scheduler actor (a local Ray)",
                         description="Starts a local Ray cluster, the scheduler actor (the generated gpu_alloc "
                                     "machine for --policy, planning with the gap-ratio planner) and one actor per "
                                     "pipeline running the train loop, then replays the scheduler's JSONL trace "
                                     "through the spec. Exit 0: every pipeline completed every rollout, none "
                                     "starved and the replay conforms; 1: otherwise; 2: bad options.")
    g.add_argument("--policy", choices=["pre_fix", "hooks_wired", "post_fix", "fenced"], default="fenced",
                   help="the scheduler's rules, from its generated spec variant (default fenced)")
    g.add_argument("--pipelines", type=int, default=2, help="pipelines sharing the pool (default 2)")
    g.add_argument("--gpus", type=int, default=4, help="GPUs in the pool (default 4; a custom Ray resource gpu_slot)")
    g.add_argument("--rollouts", type=int, default=3, help="rollouts each pipeline runs (default 3)")
    g.add_argument("--gen-s", type=float, default=0.2, help="generation work per rollout, in seconds with a rank")
    g.add_argument("--train-s", type=float, default=0.05, help="seconds of training per rollout (default 0.05)")
    g.add_argument("--skew", type=float, default=0.0, help="pipeline i's durations are scaled by 1 + skew*i")
    g.add_argument("--reorder-messages", action="store_true",
                   help="the coordinator delays each progress report and clear at random (stale clears)")
    g.add_argument("--stale-clears", action="store_true",
                   help="the coordinator holds each clear of rollout r until the begin report of r+1 is in (W3, B')")
    g.add_argument("--dispatch-delay", type=float, default=0.0,
                   help="seconds between a granted demand signal and the dispatch (post_fix's trace G gap)")
    g.add_argument("--kill-orchestrator", action="store_true",
                   help="kill the orchestrator right after start-up (the scheduler must stay reachable)")
    g.add_argument("--kill-pipeline", type=int, default=None, metavar="P",
                   help="kill pipeline P's actor --kill-after seconds into the run, then unregister it "
                        "(fenced: its GPUs return to the pool and the others must not starve)")
    g.add_argument("--kill-after", type=float, default=0.5, help="seconds into the run for --kill-pipeline")
    g.add_argument("--max-concurrency", type=int, default=1000, help="the scheduler actor's Ray max_concurrency")
    g.add_argument("--resize-timeout", type=float, default=10.0,
                   help="seconds a pipeline has to apply a resize of its ranks before the scheduler fails fast (default 10)")
    g.add_argument("--gpu-resource", default="gpu_slot",
                   help="the Ray resource one GPU is (default gpu_slot, a custom resource; GPU on a GPU cluster)")
    g.add_argument("--signal-timeout", type=float, default=2.0,
                   help="seconds a GEN request waits before post_fix's timeout (upstream: 60; default 2)")
    g.add_argument("--stall", type=float, default=10.0,
                   help="seconds a pipeline may make no progress before it is reported starved (default 10)")
    g.add_argument("--poll", type=float, default=0.1, help="the planning loop's periodic wakeup (default 0.1 s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the message delays (default 0)")
    g.add_argument("--monitor", action="store_true", help="check every spec invariant after each transition")
    g.add_argument("--dir", type=Path, default=None, help="folder for traces and logs (default: a temporary one, removed)")
    g.add_argument("--json", action="store_true", help="print the report as one JSON object")
    g.set_defaults(func=cmd_demo_sched)
    add_slots_parser(which)


def add_slots_parser(which: Any) -> None:
    s = which.add_parser("slots", help="a writer process and trainer processes pulling payloads over UCXX loopback",
                         description="Starts a writer process (the ring in POSIX shared memory, the UCXX server on "
                                     "--ports listeners) and --clients trainer processes pulling every payload over "
                                     "UCXX (UCX_TLS=tcp, loopback), with faults injected, then replays every "
                                     "process's JSONL events through slot_ring.rf. Exit 0: no torn payload, no "
                                     "duplicate, no silent loss, every worker ended normally and the replay "
                                     "conforms; 1: otherwise; 2: bad options.")
    s.add_argument("--policy", choices=["pre_fix", "post_fix", "fenced"], default="fenced",
                   help="the transport's rules, from its spec variant (default fenced)")
    s.add_argument("--clients", type=int, default=2, help="trainer processes (default 2)")
    s.add_argument("--payloads", type=int, default=200, help="payloads the writer writes (default 200)")
    s.add_argument("--rate", type=float, default=100.0, help="payloads per second (default 100; 0: as fast as it can)")
    s.add_argument("--payload-kb", type=float, default=64.0, help="KiB per payload (default 64)")
    s.add_argument("--slots", type=int, default=4, help="slots in the ring (default 4)")
    s.add_argument("--ports", type=int, default=2, help="UCXX listeners (default 2)")
    s.add_argument("--attempts", type=int, default=2, help="attempts per reference (default 2)")
    s.add_argument("--timeout-ms", type=float, default=2000.0,
                   help="a client attempt's deadline, plus the payload at 0.1 GB/s (default 2000)")
    s.add_argument("--lease-ms", type=float, default=0.0,
                   help="fenced: a grant older than this is reclaimed (default: twice --timeout-ms)")
    s.add_argument("--stall-handler", type=float, default=0.0, metavar="MS",
                   help="every --stall-every-th handler sleeps MS between OK and the payload (default 0)")
    s.add_argument("--stall-every", type=int, default=3, help="which handlers --stall-handler stalls (default 3)")
    s.add_argument("--late-commit", type=float, default=0.0, metavar="MS",
                   help="a stalled handler also waits MS before its finaliser (default 0)")
    s.add_argument("--drop-connection", type=int, default=0, metavar="K",
                   help="every K-th handler drops its connection instead of sending the payload (default 0: none)")
    s.add_argument("--kill-handler-after", type=int, default=0, metavar="N",
                   help="the handler of the N-th granted request dies mid-send and never finalises (default 0: none)")
    s.add_argument("--late-timeout", type=int, default=0, metavar="K",
                   help="every K-th attempt of a client, from its first, times out after its payload arrived (X5; default 0)")
    s.add_argument("--kill-server-after", type=float, default=0.0, metavar="SECONDS",
                   help="SIGKILL the writer process (ring and server) this long after writing starts (default 0: "
                        "never); every reference it published must end delivered or recorded lost")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds the whole run may take (default 120)")
    s.add_argument("--dir", type=Path, default=None, help="folder for traces and logs (default: a temporary one, removed)")
    s.add_argument("--json", action="store_true", help="print the report as one JSON object")
    s.set_defaults(func=cmd_demo_slots)


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


def _replay(spec: Path, machine: str, consts: dict[str, int], folder: Path,
            skew: float = 0.0) -> tuple[Any, dict[str, int], list[Path]]:
    """Replay every trace in ``folder`` (merged) through ``machine`` at ``consts``: the result,
    the count of each action, and the files read."""
    from racefree.verification import traces

    m = load_instance(spec, machine, consts)
    paths = sorted(folder.glob("*.jsonl"))
    _, streams = traces.read_events(paths, m, ir.SpecFile(str(spec), (m,)))
    counts: dict[str, int] = {}
    for stream in streams:
        for ev in stream:
            counts[ev[4]] = counts.get(ev[4], 0) + 1
    return traces.replay(m, traces.merged(streams), keep_going=True, skew=skew), counts, paths


def _replay_failure(report: dict[str, Any], result: Any, paths: list[Path]) -> None:
    if result.outcome != "ok":
        report["replay_property"] = result.prop  # None when an event was not enabled at all
        report["replay_violations"] = [p for p, _ in result.violations]
        detail = render.replay_report(result, [str(p) for p in paths])
        # a run's instance can be large (slots: a map per payload and per handler): keep the report readable
        report["replay_detail"] = detail if len(detail) <= 4000 else detail[:4000] + " ... (replay again for all of it)"


def _replay_command(spec: Path, machine: str, consts: dict[str, int], folder: Path) -> str:
    return (f"racefree replay {spec} --machine {machine} " + " ".join(f"--const {k}={v}" for k, v in consts.items())
            + f" {folder}/*.jsonl")


def ckpt_report(run: Any) -> dict[str, Any]:
    """The demo's result, with the merged traces replayed through the machine the run used."""
    from racefree.runtime.ckpt.config import spec_path

    cfg = run.config
    result, counts, paths = _replay(spec_path(), cfg.machine, cfg.consts, run.traces)
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
        "events": sum(counts.values()),
        "crashed": bool(not cfg.fenced and run.final.crashed),
        "evictions": sorted(e for st in run.stats for e in st.get("evictions", []) if st["actor"] == "orchestrator"),
        "divergences": run.total("divergences"),
        "errors": run.errors,
        "completed": run.finished,
        "failed_workers": run.failed_workers(),
        "dir": str(run.root),
        "replay_command": _replay_command(spec_path(), cfg.machine, cfg.consts, run.traces),
    }
    report["ok"] = bool(report["completed"] and not report["failed_workers"] and report["load_failures"] == 0
                        and report["torn_reads"] == 0 and report["replay"] == "ok")
    _replay_failure(report, result, paths)
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
    return "\n".join(lines + _text_tail(r))


def _text_tail(r: dict[str, Any]) -> list[str]:
    """What every demo's text report ends with: the replay's verdict, errors, where the traces are."""
    lines = []
    if r["replay"] != "ok":
        lines.append(f"  properties violated: {', '.join(r['replay_violations'])}; the first:")
        lines.append("    " + r["replay_detail"].replace("\n", "\n    "))
    for e in r["errors"][:5]:
        lines.append(f"  error: {e}")
    if r["dir"]:
        lines.append(f"  folder: {r['dir']}\n  replay again: {r['replay_command']}")
    return lines


def cmd_demo_sched(args: argparse.Namespace) -> int:
    from racefree.runtime.gpu_sched.config import SchedConfig
    from racefree.runtime.gpu_sched.demo import DemoOptions, run_demo


    try:
        config = SchedConfig(policy=args.policy, pipelines=args.pipelines, gpus=args.gpus, rollouts=args.rollouts,
                             poll_s=args.poll, signal_timeout_s=args.signal_timeout,
                             max_concurrency=args.max_concurrency, resize_timeout_s=args.resize_timeout,
                             gpu_resource=args.gpu_resource)
        options = DemoOptions(gen_s=args.gen_s, train_s=args.train_s, skew=args.skew, reorder=args.reorder_messages,
                              stale_clears=args.stale_clears, dispatch_delay_s=args.dispatch_delay,
                              kill_pipeline=args.kill_pipeline, kill_after_s=args.kill_after,
                              kill_orchestrator=args.kill_orchestrator,
                              stall_s=args.stall, seed=args.seed, monitor=args.monitor)
        if args.kill_pipeline is not None and (not 0 <= args.kill_pipeline < args.pipelines
                                               or args.policy != "fenced"):
            raise ValueError("--kill-pipeline needs a pipeline number below --pipelines, and --policy fenced "
                             "(only the fenced spec has the orchestrator's unregister)")
        if min(args.gen_s, args.train_s, args.stall) <= 0 or min(args.skew, args.dispatch_delay) < 0:
            raise ValueError("need --gen-s, --train-s, --stall > 0 and --skew, --dispatch-delay >= 0")
    except ValueError as exc:
        print(f"racefree demo sched: {exc}", file=sys.stderr)
        return 2
    return _run_reported("sched", args, lambda root, progress: sched_report(
        run_demo(config, options, root, progress=progress)), _sched_text)


def _run_reported(system: str, args: argparse.Namespace, run: Any, text: Any) -> int:
    """Run a demo in ``--dir`` (or a temporary folder, removed), print its report (``--json``
    or ``text``); exit 0 when it says ok, 1 otherwise, 2 for a --dir that is not a folder."""
    from .main import Progress

    if args.dir is not None and args.dir.exists() and not args.dir.is_dir():
        print(f"racefree demo {system}: --dir {args.dir} exists and is not a folder", file=sys.stderr)
        return 2
    temp = None if args.dir else Path(tempfile.mkdtemp(prefix=f"racefree-{system}-"))
    root = args.dir or temp
    progress = Progress(not args.json)
    try:
        report = run(root, progress)
    except KeyboardInterrupt:
        progress.clear()
        print(f"racefree demo {system}: interrupted", file=sys.stderr)
        return 130
    finally:
        progress.clear()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if temp is not None:
        report["dir"] = report["replay_command"] = None
    print(json.dumps(report) if args.json else text(report))
    return 0 if report["ok"] else 1


def cmd_demo_slots(args: argparse.Namespace) -> int:
    from racefree.runtime.slot_ring.client import ClientFaults
    from racefree.runtime.slot_ring.config import RingConfig
    from racefree.runtime.slot_ring.demo import SlotsOptions, run_slots
    from racefree.runtime.slot_ring.server import Faults
    from racefree.runtime.slot_ring.wire import OVERHEAD


    try:
        payload_bytes = int(args.payload_kb * 1024)
        if args.clients < 1 or args.payloads < 1 or args.ports < 1 or payload_bytes < 8:
            raise ValueError("need --clients, --payloads, --ports >= 1 and --payload-kb > 0")
        if min(args.rate, args.stall_handler, args.late_commit, args.drop_connection, args.kill_handler_after,
               args.late_timeout, args.lease_ms, args.kill_server_after) < 0 or args.stall_every < 1 \
                or args.timeout <= 0:
            raise ValueError("fault options, --rate and --lease-ms must be >= 0; --stall-every >= 1; --timeout > 0")
        config = RingConfig(policy=args.policy, slots=args.slots, slot_bytes=payload_bytes + OVERHEAD,
                            attempts=args.attempts, deadline_s=args.timeout_ms / 1000, lease_s=args.lease_ms / 1000)
        options = SlotsOptions(clients=args.clients, payloads=args.payloads, rate=args.rate,
                               payload_bytes=payload_bytes, ports=args.ports, timeout_s=args.timeout,
                               faults=Faults(stall_s=args.stall_handler / 1000, stall_every=args.stall_every,
                                             drop_every=args.drop_connection, kill_after=args.kill_handler_after,
                                             late_commit_s=args.late_commit / 1000),
                               client_faults=ClientFaults(late_timeout_every=args.late_timeout),
                               kill_writer_after_s=args.kill_server_after)
    except ValueError as exc:
        print(f"racefree demo slots: {exc}", file=sys.stderr)
        return 2
    return _run_reported("slots", args, lambda root, progress: slots_report(
        run_slots(config, root, options, progress=progress)), _slots_text)


# how far a trainer's clock may run ahead of the writer's "sent" for the same payload
SLOTS_SKEW_S = 0.05


def slots_report(run: Any) -> dict[str, Any]:
    """The transport demo's result: what the trainers received, and every process's events replayed."""
    from racefree.runtime.slot_ring.config import protocol_spec

    cfg = run.config
    counts = run.counts()
    consts = run.replay_consts()
    result, events, paths = _replay(protocol_spec(), cfg.spec_machine, consts, run.traces, skew=SLOTS_SKEW_S)
    report: dict[str, Any] = {
        "policy": cfg.policy,
        **{k: counts[k] for k in ("payloads_written", "delivered", "torn", "duplicates", "lost_recorded",
                                  "lost_silent")},
        "replay": "ok" if result.outcome == "ok" else "violation",
        "seconds": round(run.seconds, 2),
        "gbps": round(counts["bytes"] / run.seconds / 1e9, 4) if run.seconds > 0 else 0.0,
        "machine": cfg.spec_machine,
        "consts": consts,
        "events": sum(events.values()),
        "server": run.writer().get("server", {}),
        "reclaimed": run.writer().get("reclaimed", 0),
        "server_killed": run.writer_killed,
        "errors": [],
        "failed_workers": run.failed_workers(),
        "dir": str(run.root),
        "replay_command": _replay_command(protocol_spec(), cfg.spec_machine, consts, run.traces)
        + f" --skew {SLOTS_SKEW_S}",
    }
    report["ok"] = bool(not report["failed_workers"] and report["replay"] == "ok" and counts["torn"] == 0
                        and counts["duplicates"] == 0 and counts["lost_silent"] == 0)
    _replay_failure(report, result, paths)
    return report


def _slots_text(r: dict[str, Any]) -> str:
    lines = [
        f"policy {r['policy']} ({r['machine']}, {', '.join(f'{k}={v}' for k, v in r['consts'].items())}), "
        f"{r['seconds']} s, {r['gbps']} GB/s",
        f"  payloads written {r['payloads_written']}, delivered {r['delivered']}",
        f"  torn {r['torn']}, duplicates {r['duplicates']}, lost (recorded) {r['lost_recorded']}, "
        f"lost silently {r['lost_silent']}",
        f"  replay of {r['events']} events: {r['replay']}",
    ]
    for worker, why in r["failed_workers"].items():
        lines.append(f"  worker {worker}: {why}")
    return "\n".join(lines + _text_tail(r))


def sched_report(run: Any) -> dict[str, Any]:
    """The scheduler demo's result: what the pipelines saw, and the scheduler's trace replayed."""
    cfg = run.config
    result, counts, paths = _replay(cfg.spec, cfg.machine, cfg.consts, run.traces)
    killed = set(run.killed_pipelines)
    alive = [p for p in run.pipelines if p["pid"] not in killed]
    starved = [p for p in alive if p["rollouts"] < cfg.rollouts]
    # what a stuck pipeline breaks: its rollout never got a rank, or its request never got a grant
    liveness = sorted({"no_starvation" if (p["stuck_at"] or "").startswith(("generating", "serve"))
                       else "request_granted" for p in starved} | ({"rollouts_complete"} if starved else set()))
    report: dict[str, Any] = {
        "policy": cfg.policy,
        "rollouts_completed": sum(p["rollouts"] for p in run.pipelines),
        "rollouts_expected": len(alive) * cfg.rollouts + sum(p["rollouts"] for p in run.pipelines if p["pid"] in killed),
        "starved_pipelines": len(starved),
        "max_wait_s": round(max((p["max_wait_s"] for p in run.pipelines), default=0.0), 3),
        "gpu_utilisation": run.status["gpu_utilisation"],
        "empty_dispatches": run.status["empty_dispatches"],
        "replay": "ok" if result.outcome == "ok" else "violation",
        "seconds": round(run.seconds, 2),
        "machine": cfg.machine,
        "consts": cfg.consts,
        "events": sum(counts.values()),
        "stuck": {str(p["pid"]): p["stuck_at"] or p["error"] for p in starved},
        "liveness_violations": liveness,
        "killed_pipelines": sorted(killed),
        "errors": [p["error"] for p in alive if p["error"] and p not in starved] + (
            [run.status["failed"]] if run.status["failed"] else []),
        "orchestrator_killed": run.orchestrator_killed,
        # W8: every one of the scheduler's Ray slots held by a blocked call, so nothing gets in
        "scheduler_hung": run.hung,
        "max_concurrency": cfg.max_concurrency,
        "planner": {k: run.status[k] for k in ("cycles", "moves", "refused_moves", "floor_fills")},
        "signal_outcomes": {k: sum(p["outcomes"].get(k, 0) for p in run.pipelines)
                            for k in sorted({k for p in run.pipelines for k in p["outcomes"]})},
        "hook_messages": run.relayed,
        "dir": str(run.root),
        "replay_command": _replay_command(cfg.spec, cfg.machine, cfg.consts, run.traces),
    }
    report["ok"] = bool(not starved and not run.hung and report["replay"] == "ok" and not report["errors"]
                        and report["rollouts_completed"] == report["rollouts_expected"])
    _replay_failure(report, result, paths)
    return report


def _sched_text(r: dict[str, Any]) -> str:
    lines = [
        f"policy {r['policy']} ({r['machine']}, {', '.join(f'{k}={v}' for k, v in r['consts'].items())}), "
        f"{r['seconds']} s" + ("  - the orchestrator was killed after start-up" if r["orchestrator_killed"] else ""),
        f"  rollouts completed {r['rollouts_completed']} of {r['rollouts_expected']}, "
        f"starved pipelines {r['starved_pipelines']}, empty dispatches {r['empty_dispatches']}",
        f"  longest wait {r['max_wait_s']} s, GPU utilisation {r['gpu_utilisation']:.0%}",
        f"  replay of {r['events']} events: {r['replay']}",
    ]
    if r["scheduler_hung"]:
        lines.append(f"  the scheduler stopped answering: its {r['max_concurrency']} Ray slot(s) are held by "
                     "blocked calls, so the calls that would unblock them never start (W8)")
    for pid, why in r["stuck"].items():
        lines.append(f"  pipeline {pid} starved: {why}")
    if r["liveness_violations"]:
        lines.append(f"  liveness broken in this run: {', '.join(r['liveness_violations'])}")
    return "\n".join(lines + _text_tail(r))

"""`racefree` command line.

Exit codes: 0 when every verdict matches its expectation, 1 when one does not,
2 on bad input (a spec error, a missing file): then a located, coded message
and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from racefree import __version__
from racefree.spec import errors, ir
from racefree.spec.loader import load_file, load_instance, parse_consts, require_machines
from racefree.spec.printer import show
from racefree.verification.result import Result

from . import render

if TYPE_CHECKING:
    from racefree.verification.engine import Options


def bundled_specs() -> list[Path]:
    root = resources.files("racefree.spec")
    found: list[Path] = []
    for sub in ("examples", "protocols"):
        d = root.joinpath(sub)
        if d.is_dir():
            found += sorted(Path(str(p)) for p in d.iterdir() if p.name.endswith(".rf"))
    return found


class Progress:
    """Progress of long work on stderr, once it has taken over a second: a status line redrawn in
    place on a terminal; elsewhere (CI logs) one line per ``LOG_EVERY_S`` at most."""

    LOG_EVERY_S = 10.0

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.logged = 0.0
        self.shown = False

    def reset(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.started <= 1.0:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + message[:120])
            self.shown = True
        elif now - self.logged >= self.LOG_EVERY_S:
            sys.stderr.write(f"racefree: {message} ({now - self.started:.0f} s)\n")
            self.logged = now
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def _load(paths: list[Path]) -> list[ir.SpecFile]:
    return [load_file(p) for p in paths]


def _display_path(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _machines(files: list[ir.SpecFile], names: list[str] | None) -> list[tuple[str, ir.Machine]]:
    """The machines to work on: all of them, or those named; a file with no machine or a name that
    matches nothing is an error (a command that checks nothing must not exit 0)."""
    for f in files:
        require_machines(f)
    known = [m.name for f in files for m in f.machines]
    for name in names or []:
        if name not in known:
            raise errors.unknown_name(errors.Loc(files[0].path, 1, 1), name, "machine", known)
    return [(f.path, m) for f in files for m in f.machines if not names or m.name in names]


def _properties(targets: list[tuple[str, ir.Machine]], wanted: list[str] | None) -> None:
    """``--property`` names must each name a property of some machine checked."""
    known = sorted({p for _, m in targets for p in m.property_names})
    for name in wanted or []:
        if name not in known:
            raise errors.unknown_name(errors.Loc(targets[0][0], 1, 1), name, "property", known)


def cmd_check(args: argparse.Namespace) -> int:
    from racefree.verification.engine import MachineChecker
    from racefree.verification.interrupts import catch_ctrl_c, was_interrupted

    from .parallel import check_machines, default_jobs

    paths = [Path(p) for p in args.paths] or bundled_specs()
    files = _load(paths)  # every file parses and type-checks before any verdict is printed
    targets = _machines(files, args.machine)
    consts = _instance_consts(args, paths)
    if consts:  # the named machines at the sizes a deployment runs (every name checked first)
        targets = [(files[0].path, load_instance(paths[0], name, consts)) for name in args.machine]
    _properties(targets, args.property)
    catch_ctrl_c()
    progress = Progress(True)
    opt = _options(args, progress)
    results: list[tuple[str, Result]] = []
    notes: list[str] = []
    interrupted = False
    diagnose = not (args.no_diagnostics or args.property) and opt.engine != "bmc"  # notes are per machine

    def check(m: ir.Machine, report: Callable[[str], None]) -> Iterator[tuple[str, Any]]:
        checker = MachineChecker(m, replace(opt, progress=report))
        for r in checker.results(args.property):
            yield "result", r
        if diagnose:
            for f in checker.diagnostics():
                yield "note", f

    machines = [replace(m, strict_bounds=True) if args.strict_bounds else m for _, m in targets]
    try:
        for i, kind, item in check_machines(machines, check, args.jobs or default_jobs(), progress):
            path, m = targets[i]
            shown = _display_path(Path(path))
            if kind == "result":
                results.append((shown, item))
                if args.json:  # JSON Lines, flushed as each property finishes, so CI can stream it
                    progress.clear()
                    print(json.dumps(render.result_json(shown, item) | ({"consts": consts} if consts else {})),
                          flush=True)
            else:
                notes.append(render.diagnostic_line(shown, m, item))
                if args.json:
                    progress.clear()
                    print(json.dumps(render.diagnostic_json(shown, m, item)), flush=True)
    except Exception:
        if not was_interrupted():
            raise
        interrupted = True  # a Z3 call cancelled by the interrupt (Z3Exception "push canceled")
    except KeyboardInterrupt:
        interrupted = True
    progress.clear()
    ok = all(r.matches for _, r in results)
    if interrupted:
        if not args.json and results:
            print(render.results_table(results))
        print(f"interrupted: {len(results)} properties checked before Ctrl-C", file=sys.stderr)
        return 130
    if args.json:
        return 0 if ok else 1
    if consts:
        print("instance: " + ", ".join(f"{k}={v}" for k, v in consts.items()))
    print(render.results_table(results))
    if notes:
        print("\nnotes (diagnostics; they do not change the exit code):")
        print("\n".join(f"  {n}" for n in notes))
    for path, r in results:
        if r.trace is not None and not args.quiet:
            print(f"\n{path}: {r.machine.name}.{r.prop} violated ({r.method}, {len(r.trace) - 1} steps)"
                  + (f" - {r.detail.split(':')[0]}" if r.loop_start is not None else "") + ":")
            print(render.trace_table(r))
        if args.certificates and r.certificate:
            print(f"\n{path}: {r.machine.name}.{r.prop} holds; inductive invariant:\n  {r.certificate}")
    bad = [r for _, r in results if not r.matches]
    print(f"\n{len(results)} properties, {len(results) - len(bad)} as expected, {len(bad)} not as expected")
    return 0 if ok else 1


def _options(args: argparse.Namespace, progress: Progress) -> Options:
    """Engine options from the command line; an option not given keeps the engine's default."""
    from racefree.verification.engine import Options

    given = {k: getattr(args, k) for k in ("timeout", "rlimit", "max_states", "dfs_states") if getattr(args, k) is not None}
    return Options(engine=args.engine, depth=args.depth, progress=progress, symmetry=args.symmetry,
                   stutter="deadlock" if args.fair_next else "always", **given)


def _instance_consts(args: argparse.Namespace, paths: list[Path]) -> dict[str, int]:
    """``--const`` overrides of ``check``: one spec file and the machines named (RF041 otherwise)."""
    if not args.const:
        return {}
    where = str(paths[0]) if args.paths else "<bundled specs>"
    if len(args.paths) != 1 or not args.machine:
        raise errors.bad_const_override(errors.Loc(where, 1, 1), args.const[0], "needs one spec file and --machine",
                                        "racefree check SPEC --machine M --const NAME=VALUE")
    return parse_consts(args.const, where)


def cmd_explain(args: argparse.Namespace) -> int:
    from racefree.verification.engine import MachineChecker

    [(_, m)] = _machines([load_file(args.file)], [args.machine])
    if args.property not in m.property_names:
        raise errors.unknown_property(m.loc, args.property, m.property_names)
    progress = Progress(True)
    r = MachineChecker(m, _options(args, progress)).check(args.property)
    progress.clear()
    if r.trace is None:
        print(f"%% {m.name}.{args.property}: {r.verdict} ({r.method}); no counterexample to draw")
        if r.certificate:
            print("%% inductive invariant:\n%% " + r.certificate.replace("\n", "\n%% "))
        return 0 if r.matches else 1
    print(render.mermaid(r), end="")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    for _, m in _machines([load_file(args.file)], [args.machine] if args.machine else None):
        print(show(m))
    return 0


def cmd_gen(args: argparse.Namespace) -> int:
    from racefree.codegen import gen
    from racefree.codegen.machine import GenError

    specs = [Path(p) for p in args.paths] or bundled_specs()
    outdir = Path(args.output) if args.output else (gen.default_outdir() if not args.paths else Path("."))
    try:
        planned = gen.plan(specs, outdir)
        if args.check:
            problems = gen.drift(planned, outdir)
            for d in problems:
                print(f"{_display_path(d.path)}: {d.problem}", file=sys.stderr)
            if problems:
                command = " ".join(["racefree gen", *args.paths] + (["-o", args.output] if args.output else []))
                print(f"generated code is out of date with its specs: run `{command}`", file=sys.stderr)
                return 1
            print(f"{len(planned)} generated files match their specs")
            return 0
        changed, removed = gen.write(planned, outdir)
    except GenError as exc:
        print(f"error[RF030]: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only or non-folder -o: gen.write leaves what was there
        where = exc.filename or outdir
        raise errors.cannot_write(errors.Loc(str(where), 1, 1), exc.strerror or str(exc)) from None
    for path in changed:
        print(f"wrote {_display_path(path)}")
    for path in removed:
        print(f"removed {_display_path(path)}")
    print(f"{len(planned)} files in {_display_path(outdir)}: {len(changed)} written, {len(removed)} removed")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from racefree.verification import traces

    spec = load_file(args.spec)
    chosen = None
    if args.const and not args.machine:
        raise errors.bad_const_override(errors.Loc(args.spec, 1, 1), args.const[0], "needs a machine",
                                        "name it with --machine")
    if args.machine:
        chosen = next((m for m in spec.machines if m.name == args.machine), None)
        if chosen is None:
            raise errors.unknown_name(errors.Loc(args.spec, 1, 1), args.machine, "machine",
                                      [m.name for m in spec.machines])
        if args.const:
            chosen = load_instance(args.spec, args.machine, parse_consts(args.const, args.spec))
    paths = [Path(p) for p in args.traces]
    started = time.perf_counter()
    machine, streams = traces.read_events(paths, chosen, spec)
    progress = Progress(True)
    result = traces.replay(machine, traces.merged(streams), context=args.context, skew=args.skew,
                           progress=lambda n: progress(f"replayed {n:,} events"))
    progress.clear()
    elapsed = time.perf_counter() - started
    print(render.replay_report(result, [str(p) for p in paths]))
    rate = f"{result.events / elapsed:,.0f} events/s" if elapsed > 0 else ""
    print(f"{result.events:,} events from {len(paths)} file(s), {result.states:,} distinct states, "
          f"{elapsed:.2f} s ({rate})")
    return 0 if result.outcome == "ok" else 1


def cmd_diagram(args: argparse.Namespace) -> int:
    from racefree.codegen import diagram
    from racefree.codegen.machine import GenError

    [(_, m)] = _machines([load_file(args.file)], [args.machine])
    try:
        g = diagram.control_graph(m, args.cell)
    except GenError as exc:
        print(f"error[RF030]: {exc}", file=sys.stderr)
        return 2
    if args.format == "transitions":
        print(json.dumps(diagram.to_transitions(g), indent=2))
    else:
        print(diagram.mermaid(g), end="")
    return 0


def cmd_codes(args: argparse.Namespace) -> int:
    for code, title in errors.CATALOG.items():
        print(f"{code}  {title}")
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (anything else is a usage error, exit 2)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'")
    return int(text)


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds >= 0 (anything else is a usage error, exit 2)."""
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got '{text}'")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racefree", description="Prove, refute and explain protocol state machines.",
                                epilog="Exit codes: 0 every verdict as expected (or the command did what was "
                                       "asked), 1 a verdict not as expected / a replay that does not conform, "
                                       "2 bad input, 130 interrupted. `racefree CMD --help` for each command.")
    p.add_argument("--version", action="version", version=f"racefree {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def engine_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--engine", choices=["auto", "prove", "bmc", "explicit"], default="auto",
                        help="auto (default) and prove: the state graph when the instance is small, proofs "
                             "(Houdini over the declared invariants, Spacer per slice, certificate re-checked), "
                             "BMC for the shortest trace, k-induction, then explicit search; bmc: counterexamples "
                             "only, never 'holds'; explicit: breadth-first enumeration through the interpreter")
        sp.add_argument("--depth", type=int, default=30, help="BMC / lasso / k-induction bound (default 30)")
        sp.add_argument("--rlimit", type=int, metavar="UNITS",
                        help="Z3 work budget per solver call, in Z3 resource units: the deterministic limit "
                             "that makes an engine give up (default 100,000,000: about a minute)")
        sp.add_argument("--max-states", type=int, metavar="N",
                        help="states the explicit engine may enumerate before it reports unknown (default 5,000,000)")
        sp.add_argument("--dfs-states", type=int, metavar="N",
                        help="states a depth-first search for a deep bug may visit, past what breadth-first "
                             "search and BMC reach (default 200,000)")
        sp.add_argument("--symmetry", choices=["on", "off", "count"], default="on",
                        help="safety searches keep one state per orbit of the spec's symmetric types (on, "
                             "the default); count: also report how many states those orbits hold; off: "
                             "enumerate every state")
        sp.add_argument("--fair-next", action="store_true",
                        help="liveness: a run may stop only where no action is enabled (the whole system weakly "
                             "fair, TLA+'s WF(Next)); default: a run may stop anywhere unless a `fair` "
                             "declaration obliges an action")
        sp.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="wall-clock safety net per solver call; its expiry reports 'unknown' (default 300)")

    c = sub.add_parser("check", help="check every property of every machine against its expect line",
                       description="Checks every invariant, liveness property and deadlock_free of the machines "
                                   "and compares each verdict with its expect line (none: must hold).")
    c.add_argument("paths", nargs="*", help="spec files (default: the bundled specs)")
    c.add_argument("--json", action="store_true",
                   help="JSON Lines: one object per property, printed as soon as it is checked")
    c.add_argument("--machine", action="append", help="only this machine (repeatable)")
    c.add_argument("--property", action="append", metavar="NAME", help="only this property (repeatable)")
    c.add_argument("--strict-bounds", action="store_true",
                   help="an update or key out of its declared range is a violation (built-in property in_bounds, "
                        "with a trace) rather than a disabled action; a spec sets this per machine with strict_bounds")
    c.add_argument("--jobs", type=_positive, metavar="N", default=None,
                   help="machines checked at once, each in a process of its own (default: one per CPU); "
                        "the results are the same for any N")
    c.add_argument("--no-diagnostics", action="store_true",
                   help="skip the notes on never-enabled actions, bound-blocked actions and vacuous premises")
    c.add_argument("--quiet", action="store_true", help="no trace tables")
    c.add_argument("--certificates", action="store_true", help="print the inductive invariant of each proof")
    c.add_argument("--const", action="append", default=[], metavar="NAME=VALUE",
                   help="check the --machine(s) with this constant replaced, e.g. the sizes a run uses "
                        "(repeatable; one spec file)")
    engine_opts(c)
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("explain", help="print a counterexample as a Mermaid sequence diagram")
    e.add_argument("file", help="a spec file")
    e.add_argument("machine", help="a machine of that file")
    e.add_argument("property", help="one of its properties (an invariant, a liveness property or deadlock_free)")
    engine_opts(e)
    e.set_defaults(func=cmd_explain)

    s = sub.add_parser("show", help="print machines with their variants merged, in spec syntax")
    s.add_argument("file", help="a spec file")
    s.add_argument("machine", nargs="?", help="only this machine (default: all)")
    s.set_defaults(func=cmd_show)

    g = sub.add_parser("gen", help="generate a typed Python runtime module per machine (and model tests per spec)")
    g.add_argument("paths", nargs="*", help="spec files (default: the bundled specs, into racefree/runtime/generated)")
    g.add_argument("-o", "--output", help="output folder, a Python package (default: racefree/runtime/generated "
                                          "for the bundled specs, else the current folder)")
    g.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a generated file is missing, stale, hand-edited or extra")
    g.set_defaults(func=cmd_gen)

    r = sub.add_parser("replay", help="check recorded JSONL event traces against a spec")
    r.add_argument("spec", help="the spec file the machine was generated from")
    r.add_argument("traces", nargs="+", help="event files (one per process; merged by time)")
    r.add_argument("--machine", help="the machine to check (default: the one the events name)")
    r.add_argument("--context", type=int, default=10, help="events shown before a failure (default 10)")
    r.add_argument("--const", action="append", default=[], metavar="NAME=VALUE",
                   help="the machine at other sizes, as the runtime ran it (repeatable; needs --machine)")
    r.add_argument("--skew", type=_seconds, default=0.0, metavar="SECONDS",
                   help="how far different files' clocks may disagree with the events' real order: a "
                        "refused event is retried after an enabled event of another file at most this "
                        "much later (default 0: strictly by time)")
    r.set_defaults(func=cmd_replay)

    from .demo import add_demo_parser

    add_demo_parser(sub)

    d = sub.add_parser("diagram", help="draw a machine's control states (Mermaid stateDiagram-v2 or transitions)")
    d.add_argument("file", help="a spec file")
    d.add_argument("machine", help="a machine of that file")
    d.add_argument("--cell", action="append", help="a variable or map cell to draw, e.g. pc[0] (repeatable; "
                                                    "default: the enum-valued variables)")
    d.add_argument("--format", choices=["mermaid", "transitions"], default="mermaid",
                   help="transitions: JSON keyword arguments for transitions.Machine")
    d.set_defaults(func=cmd_diagram)

    k = sub.add_parser("codes", help="list the error codes")
    k.set_defaults(func=cmd_codes)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except errors.SpecError as exc:
        print(exc.diagnostic.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `racefree ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""racefree gen: golden output, drift check, and the generated runtime's behaviour (policies, locks,
monitor, recorder, snapshot, role views), always compared with the interpreter."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
from racefree.codegen import gen
from racefree.codegen.machine import machine_source
from racefree.runtime.base import ArgumentError, GuardRejected, GuardTimeout, InvariantViolated, Recorder
from racefree.runtime.generated import peterson, slots, slots_forgetful_consume
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_file

from .conftest import EXAMPLES, ROOT, SPECS

FEATURES = SPECS / "counterexample" / "features.rf"
GOLDEN = SPECS / "codegen" / "features.py"


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The golden module, compared first, then imported from disk and run."""
    m = load_file(FEATURES).machines[0]
    text = machine_source(m, "tests/specs/counterexample/features.rf")
    if os.environ.get("RACEFREE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "generated code changed: RACEFREE_UPDATE_GOLDEN=1 to accept"
    assert machine_source(m, "tests/specs/counterexample/features.rf") == text  # deterministic
    path = tmp_path_factory.mktemp("gen") / "features_gen.py"
    path.write_text(text)
    return _import(path, "features_gen")


def test_golden_module_runs_like_the_interpreter(features: ModuleType) -> None:
    interp = Interpreter(load_file(FEATURES).machines[0])
    m = features.Features()
    state = interp.init
    assert m.encoded() == state == tuple(m.snapshot())
    # A fixed walk through every action, including the if/else, the bool-keyed map and a
    # step made undefined by an out-of-range assignment (finish once total would pass 6).
    for action, args in [("start", (0,)), ("finish", (0,)), ("reset", (0,)), ("start", (1,)), ("finish", (1,)),
                         ("start", (2,)), ("finish", (2,)), ("start", (0,)), ("finish", (0,)), ("start", (1,))]:
        expected = interp.step(state, action, args)
        assert (m.enabled(action, *args)) == (expected is not None), (action, args)
        if expected is not None:
            assert m.fire(action, *args)
            state = expected
        assert m.encoded() == state, (action, args)


def test_policies(features: ModuleType) -> None:
    m = features.Features()
    assert m.reset(0) is False  # ignore: a logged no-op
    with pytest.raises(GuardRejected, match=r"finish\(i=0\) rejected: requires holder == i") as exc:
        m.finish(0)
    assert exc.value.conjunct == "holder == i" and exc.value.arguments == (0,)
    m.start(0)
    with pytest.raises(GuardTimeout):
        m.start(1, timeout=0.05)  # wait: holder is taken
    with pytest.raises(ArgumentError):
        m.start(7)
    # wait: another thread enables the guard
    done = threading.Event()
    threading.Thread(target=lambda: (m.start(1, timeout=5), done.set())).start()
    time.sleep(0.05)
    assert not done.is_set()
    m.finish(0)
    assert done.wait(5)


def test_async_wait(features: ModuleType) -> None:
    m = features.Features()
    m.start(0)

    async def main() -> bool:
        waiter = asyncio.create_task(m.start_async(1, timeout=5))
        await asyncio.sleep(0.02)
        assert not waiter.done()
        threading.Thread(target=m.finish, args=(0,)).start()  # from another thread
        return await waiter

    assert asyncio.run(main())
    with pytest.raises(GuardTimeout):
        asyncio.run(m.start_async(2, timeout=0.01))


def test_monitor_names_the_invariant_and_the_last_transitions() -> None:
    m = slots_forgetful_consume.SlotsForgetfulConsume(monitor=True)
    m.claim(0, 0)
    m.finalise(0, 0)
    m.consume(0)
    m.claim(1, 0)
    with pytest.raises(InvariantViolated) as exc:
        m.finalise(1, 0)
    assert exc.value.property == "single_finaliser"
    assert [t.action for t in exc.value.recent] == ["claim", "finalise", "consume", "claim", "finalise"]
    quiet = slots_forgetful_consume.SlotsForgetfulConsume()  # monitor off by default
    for step in [("claim", 0, 0), ("finalise", 0, 0), ("consume", 0), ("claim", 1, 0), ("finalise", 1, 0)]:
        quiet.fire(*step)
    assert quiet.violated_invariants() == ["single_finaliser"]


def test_snapshot_restore_and_role_views() -> None:
    m = slots.Slots()
    m.claim(2, 3)
    snap = m.snapshot()
    assert snap.owner[3] == 2 and snap.state[3] == slots.SlotState.WRITING
    other = slots.Slots()
    other.restore(snap)
    assert other.snapshot() == snap
    with pytest.raises(ArgumentError):
        other.restore(snap._replace(owner=(9,) * 6))
    assert other.snapshot() == snap  # a bad restore changes nothing
    writer, reader = slots.SlotsWriterView(m), slots.SlotsReaderView(m)
    assert hasattr(writer, "finalise") and not hasattr(writer, "consume")
    assert hasattr(reader, "consume") and not hasattr(reader, "claim")
    writer.finalise(2, 3)
    assert reader.consume(3)


def test_listeners_run_outside_the_lock() -> None:
    m = slots.Slots()
    seen = []

    def on(action: str, args: tuple) -> None:
        seen.append((action, args))
        if action == "finalise":
            m.consume(args[1])  # re-entering the machine must not deadlock

    m.add_listener(on)
    m.claim(0, 1)
    m.finalise(0, 1)
    assert seen == [("claim", (0, 1)), ("finalise", (0, 1)), ("consume", (1,))]


def test_threads_do_not_lose_updates() -> None:
    m = slots.Slots()
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(300):
                s = (w * 2 + i) % 6
                if m.enabled("claim", w, s) and m.claim(w, s):
                    m.finalise(w, s)
                    m.consume(s)
        except GuardRejected:
            pass  # another thread claimed the slot between enabled() and claim()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert m.violated_invariants() == []
    assert all(s == slots.SlotState.FREE for s in m.state)


def test_recorder_events_replay(tmp_path: Path, run_cli) -> None:
    """Two machines' recorders (two 'processes') merged by racefree replay; a forged event is refused."""
    with Recorder(tmp_path / "a.jsonl") as rec:
        m = peterson.Peterson(recorder=rec)
        for a, p in [("raise_flag", 0), ("yield_turn", 0), ("enter", 0), ("leave", 0)]:
            m.fire(a, p)
    code, out, _ = run_cli("replay", str(EXAMPLES / "peterson.rf"), str(tmp_path / "a.jsonl"))
    assert code == 0 and "4 events" in out
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    forged = lines[:2] + [lines[3].replace('"seq":4', '"seq":3')]
    (tmp_path / "b.jsonl").write_text("\n".join(forged) + "\n")
    code, out, _ = run_cli("replay", str(EXAMPLES / "peterson.rf"), str(tmp_path / "b.jsonl"))
    assert code == 1 and "event 3 is not enabled" in out and "leave(p=0)" in out
    (tmp_path / "c.jsonl").write_text(lines[0] + "\n{not json\n")
    code, _, err = run_cli("replay", str(EXAMPLES / "peterson.rf"), str(tmp_path / "c.jsonl"))
    assert code == 2 and "c.jsonl:2:1: error[RF040]" in err


def test_event_lines_show_enums_bools_and_seconds(tmp_path: Path, run_cli) -> None:
    """Each event is one JSON object; the cached tail of a repeated argument tuple is the same line."""
    from racefree.codegen.instance import machine_class

    spec = tmp_path / "paint.rf"
    spec.write_text("machine Paint\n  enum Color { RED, BLUE }\n  var c: Color = RED\n  var wet: bool = false\n"
                    "  role painter\n    action paint(to: Color, fresh: bool)\n      requires c != to\n"
                    "      c := to\n      wet := fresh\n")
    cls = machine_class(spec, "Paint")
    color = cls.ENUMS["Color"]
    before = time.time()
    with Recorder(tmp_path / "p.jsonl") as rec:
        m = cls(recorder=rec)
        for to, fresh in [(color.BLUE, True), (color.RED, False), (color.BLUE, True), (1, False)] * 2:
            if m.enabled("paint", to, fresh):
                m.fire("paint", to, fresh)
    after = time.time()
    events = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [e["args"] for e in events[:3]] == [{"to": "BLUE", "fresh": True}, {"to": "RED", "fresh": False},
                                               {"to": "BLUE", "fresh": True}]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(before <= e["time"] <= after for e in events) and all(e["pid"] == os.getpid() for e in events)
    code, out, _ = run_cli("replay", str(spec), str(tmp_path / "p.jsonl"))
    assert code == 0 and f"{len(events)} events" in out, out


def test_replay_merges_files_by_time(tmp_path: Path, run_cli) -> None:
    with Recorder(tmp_path / "w.jsonl") as rw, Recorder(tmp_path / "r.jsonl") as rr:
        wm, rm = slots.Slots(recorder=rw), slots.Slots(recorder=rr)
        wm.claim(0, 0)
        wm.finalise(0, 0)
        rm.restore(wm.snapshot())  # the reader's process mirrors the shared state
        rm.consume(0)
    code, out, _ = run_cli("replay", str(EXAMPLES / "slots.rf"), str(tmp_path / "r.jsonl"), str(tmp_path / "w.jsonl"))
    assert code == 0 and "3 events from 2 file(s)" in out, out


def test_bundled_generated_code_has_not_drifted() -> None:
    """Regenerate in memory: every checked-in module is exactly what racefree gen writes."""
    from racefree.cli.main import bundled_specs

    planned = gen.plan(bundled_specs(), gen.default_outdir())
    assert gen.drift(planned, gen.default_outdir()) == []


def test_gen_check_reports_each_kind_of_drift(tmp_path: Path, run_cli) -> None:
    spec = tmp_path / "toy.rf"
    spec.write_text((EXAMPLES / "slots.rf").read_text())
    out = tmp_path / "out"
    assert run_cli("gen", str(spec), "-o", str(out))[0] == 0
    assert run_cli("gen", str(spec), "-o", str(out), "--check")[0] == 0
    (out / "slots.py").write_text((out / "slots.py").read_text() + "# tweak\n")
    (out / "slots_live.py").unlink()
    (out / "old_machine.py").write_text((out / "__init__.py").read_text())
    code, _, err = run_cli("gen", str(spec), "-o", str(out), "--check")
    assert code == 1
    assert "slots.py: hand-edited" in err and "slots_live.py: missing" in err and "old_machine.py: extra" in err
    assert f"run `racefree gen {spec} -o {out}`" in err
    spec.write_text(spec.read_text().replace("const S = 6", "const S = 5"))
    code, _, err = run_cli("gen", str(spec), "-o", str(out), "--check")
    assert "slots_forgetful_consume.py: stale" in err
    assert run_cli("gen", str(spec), "-o", str(out))[0] == 0
    assert run_cli("gen", str(spec), "-o", str(out), "--check")[0] == 0
    assert not (out / "old_machine.py").exists()


def test_gen_with_a_bad_spec_writes_nothing(tmp_path: Path, run_cli) -> None:
    good, bad = tmp_path / "good.rf", tmp_path / "bad.rf"
    good.write_text((EXAMPLES / "slots.rf").read_text())
    bad.write_text("machine Bad\n  var x: 0..1 = 5\n")
    out = tmp_path / "out"
    code, _, err = run_cli("gen", str(good), str(bad), "-o", str(out))
    assert code == 2 and "bad.rf:2:" in err and "Traceback" not in err
    assert not out.exists()


def test_importing_a_generated_module_does_not_load_z3() -> None:
    code = ("import sys, racefree.runtime.generated.slot_ring_fenced, racefree.runtime.generated.ckpt_fenced; "
            "sys.exit(1 if 'z3' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0


def test_diagram_and_transitions_interop(run_cli) -> None:
    from racefree.codegen import diagram
    from transitions import Machine

    peterson_ir = load_file(EXAMPLES / "peterson.rf").machines[0]
    g = diagram.control_graph(peterson_ir)
    assert g.cells == ("pc[0]",) and g.initial == "IDLE"
    assert ("WAITING", "enter", "CRITICAL") in g.edges and ("CRITICAL", "leave", "IDLE") in g.edges
    code, out, _ = run_cli("diagram", str(EXAMPLES / "peterson.rf"), "Peterson")
    assert code == 0 and out.startswith("stateDiagram-v2") and "--> " in out

    class Model:
        pass

    model = Model()
    Machine(model=model, **diagram.to_transitions(g))
    for trigger in ["raise_flag", "yield_turn", "enter", "leave"]:
        getattr(model, trigger)()
    assert model.state == "IDLE"  # type: ignore[attr-defined]
    code, _, err = run_cli("diagram", str(EXAMPLES / "slots.rf"), "Slots", "--cell", "nope")
    assert code == 2 and "no cell nope" in err


def test_a_recorder_shared_by_threads_loses_nothing(tmp_path: Path) -> None:
    def run(m: slots.Slots) -> None:
        for i in range(2000):
            m.claim(0, i % 6)
            m.finalise(0, i % 6)
            m.consume(i % 6)

    with Recorder(tmp_path / "shared.jsonl") as rec:
        threads = [threading.Thread(target=run, args=(slots.Slots(recorder=rec),)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    seqs = sorted(int(line.split(",")[0].split(":")[1]) for line in (tmp_path / "shared.jsonl").open())
    assert seqs == list(range(1, 4 * 6000 + 1))


def test_gen_never_overwrites_a_file_it_did_not_write(tmp_path: Path, run_cli) -> None:
    spec = tmp_path / "toy.rf"
    spec.write_text((EXAMPLES / "slots.rf").read_text())
    out = tmp_path / "out"
    out.mkdir()
    (out / "slots_live.py").write_text("# mine\n")
    code, _, err = run_cli("gen", str(spec), "-o", str(out))
    assert code == 2 and "was not written by racefree gen" in err
    assert sorted(p.name for p in out.iterdir()) == ["slots_live.py"]  # nothing else written


@pytest.mark.slow
def test_a_users_module_type_checks_against_the_installed_package(tmp_path: Path) -> None:
    """mypy --strict on a trainer's module that imports a generated machine, against racefree as
    installed (the README's editable install, or pip install .): the package ships py.typed and
    its import paths are ones a type checker can follow."""
    user = tmp_path / "trainer_loop.py"
    user.write_text(
        "from racefree.runtime.generated.ckpt_fenced import CkptFenced\n\n\n"
        "def next_step(m: CkptFenced) -> int:\n"
        "    m.clean()\n"
        "    return m.snapshot().n + 1\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    user.write_text(user.read_text().replace("return m.snapshot().n + 1", 'return m.snapshot().tpc + "x"'))
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "Unsupported operand" in out.stdout, out.stdout  # the types are real

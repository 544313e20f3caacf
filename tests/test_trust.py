"""An exit code CI can trust: nothing checked is never a success, no input gives a traceback,
results do not depend on the machine, bounds and vacuity are reported, Ctrl-C is prompt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ROOT, SPECS, jsonl

FIFO = """machine Fifo
  const C = 3
  var count: 0..C = 0
  role producer
    action put
      count := count + 1
  role consumer
    action get
      requires count > 0
      count := count - 1
    action flush
      requires count > C
      count := 0
  invariant no_overflow: count <= C
  liveness drained: count == C + 1 leads_to count == 0
"""


def _no_traceback(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code == 2 and "error[RF" in err, (code, err)


# ------------------------------------------------------------------ nothing checked is not a success


def test_nothing_checked_is_never_a_success(run_cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.rf"
    empty.write_text("# a comment, no machine\n")
    for argv, code, what in [
        (["check", str(empty)], 2, "RF042"),
        (["check", "spec/examples/slots.rf", "--machine", "Nope"], 2, "unknown machine 'Nope'"),
        (["check", "spec/examples/slots.rf", "--property", "nope"], 2, "unknown property 'nope'"),
        (["show", "spec/examples/slots.rf", "Nope"], 2, "unknown machine 'Nope'"),
        (["show", str(empty)], 2, "RF042"),
        (["explain", "spec/examples/slots.rf", "Nope", "x"], 2, "unknown machine"),
        (["diagram", "spec/examples/slots.rf", "Nope"], 2, "unknown machine"),
    ]:
        got, out, err = run_cli(*argv)
        assert (got, out) == (code, ""), (argv, err)
        assert what in err and "Traceback" not in err, (argv, err)


def test_replay_of_no_event_for_the_machine_fails(run_cli, tmp_path: Path) -> None:
    event = {"seq": 1, "time": 1.0, "machine": "Slots", "role": "writer", "action": "claim",
             "args": {"w": 0, "s": 0}, "pid": 1}
    trace = tmp_path / "events.jsonl"
    trace.write_text(json.dumps(event) + "\n")
    code, _, err = run_cli("replay", "spec/examples/slots.rf", str(trace), "--machine", "SlotsLive")
    assert code == 2 and "no event of machine 'SlotsLive'" in err and "their events name Slots" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run_cli("replay", "spec/examples/slots.rf", str(empty))
    assert code == 2 and "no events" in err
    code, out, _ = run_cli("replay", "spec/examples/slots.rf", str(trace), "--machine", "Slots")
    assert code == 0 and "1 events" in out  # the same file, for the machine it names, is checked


# ------------------------------------------------------------------ no traceback on any input


def test_bad_files_and_folders_are_typed_errors(run_cli, tmp_path: Path) -> None:
    binary = tmp_path / "blob.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    _no_traceback(*_code_err(run_cli("replay", "spec/examples/slots.rf", str(binary))))
    listy = tmp_path / "list.jsonl"
    listy.write_text("[1, 2, 3]\n")
    code, _, err = run_cli("replay", "spec/examples/slots.rf", str(listy))
    _no_traceback(code, err)
    assert "a JSON list" in err and "list indices" not in err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _no_traceback(*_code_err(run_cli("gen", "spec/examples/slots.rf", "-o", str(blocker / "out"))))
    assert blocker.read_text() == "not a folder"
    code, _, err = run_cli("demo", "ckpt", "--dir", str(blocker), "--steps", "2")
    assert code == 2 and "not a folder" in err and "Traceback" not in err


def _code_err(res: tuple[int, str, str]) -> tuple[int, str]:
    return res[0], res[2]


SMALL = [SPECS / "ok" / "lock_handoff.rf", SPECS / "ok" / "token_ring.rf", ROOT / "spec" / "examples" / "peterson.rf"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(run_cli, tmp_path: Path, data: bytes) -> None:
    spec = tmp_path / "fuzz.rf"
    spec.write_bytes(data)
    for argv in (["check", str(spec)], ["gen", str(spec), "-o", str(tmp_path / "out")], ["show", str(spec)]):
        code, out, err = run_cli(*argv)
        _no_traceback(code, err)
        assert out == "", (argv, data)
    trace = tmp_path / "fuzz.jsonl"
    trace.write_bytes(data)
    code, _, err = run_cli("replay", "spec/examples/peterson.rf", str(trace))
    _no_traceback(code, err)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(SMALL), cut=st.floats(0, 1))
def test_fuzz_truncated_specs(run_cli, tmp_path: Path, which: Path, cut: float) -> None:
    text = which.read_text()
    spec = tmp_path / "cut.rf"
    spec.write_text(text[: int(len(text) * cut)])
    code, _, err = run_cli("check", str(spec), "--quiet")
    assert "Traceback" not in err
    assert code in (0, 1, 2), err  # a cut at a machine's end is a valid (smaller) spec
    if code == 2:
        assert "error[RF" in err


_EVENT = st.fixed_dictionaries({}, optional={
    "seq": st.one_of(st.integers(-2, 5), st.text(max_size=3), st.none()),
    "time": st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=3)),
    "machine": st.sampled_from(["Peterson", "PetersonTurnFirst", "Nope", 3]),
    "action": st.sampled_from(["raise_flag", "enter", "nope", None]),
    "args": st.one_of(st.dictionaries(st.sampled_from(["p", "q"]), st.one_of(st.integers(-1, 3), st.text(max_size=2))),
                      st.lists(st.integers(), max_size=2), st.none()),
    "pid": st.one_of(st.integers(), st.text(max_size=2)),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_EVENT.map(json.dumps), st.text(max_size=30),
                                st.lists(st.integers(), max_size=3).map(json.dumps)), min_size=0, max_size=6))
def test_fuzz_random_jsonl(run_cli, tmp_path: Path, lines: list[str]) -> None:
    trace = tmp_path / "events.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("replay", "spec/examples/peterson.rf", str(trace))
    assert "Traceback" not in err
    assert code in (0, 1, 2)
    if code == 2:
        assert "error[RF" in err


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--shards", "-1"], ["--policy", "nope"], ["--readers", "x"]])
def test_fuzz_bad_demo_options(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "racefree.cli.main", "demo", "ckpt", *argv],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------ bounds and vacuity


def test_diagnostics_name_dead_actions_bound_blocked_actions_and_vacuous_premises(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "fifo.rf"
    spec.write_text(FIFO)
    code, out, _ = run_cli("check", str(spec), "--json")
    assert code == 0  # the buggy put is silently disabled at count = C: no_overflow "holds"
    rows = jsonl(out, diagnostics=True)
    notes = {(r["diagnostic"], r["subject"]): r for r in rows if r["kind"] == "diagnostic"}
    assert set(notes) == {("never_enabled", "flush"), ("out_of_bounds", "put"), ("vacuous", "drained")}
    example = notes[("out_of_bounds", "put")]["trace"]
    assert example[-1]["state"] == {"count": 3} and len(example) == 4  # the first such state, shortest path
    code, out, _ = run_cli("check", str(spec))
    assert "put is disabled by a type bound alone" in out and "first in: count = 3 (after 3 steps)" in out


def test_strict_bounds_makes_an_out_of_range_update_a_violation(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "fifo.rf"
    spec.write_text(FIFO)
    code, out, _ = run_cli("check", str(spec), "--strict-bounds", "--json", "--no-diagnostics")
    assert code == 1
    row = next(r for r in jsonl(out) if r["property"] == "in_bounds")
    assert row["verdict"] == "violated" and row["replayed"] and row["bound"] == 3
    assert [s["action"] for s in row["trace"][1:]] == ["put", "put", "put"]
    # the same as a per-machine setting, with its expectation in the spec
    spec.write_text(FIFO + "  strict_bounds\n  expect in_bounds violated\n")
    code, out, _ = run_cli("check", str(spec), "--json", "--no-diagnostics", "--engine", "explicit")
    assert code == 0 and any(r["property"] == "in_bounds" and r["verdict"] == "violated" for r in jsonl(out))
    code, out, _ = run_cli("show", str(spec))
    assert "  strict_bounds\n" in out


# ------------------------------------------------------------------ determinism and interrupts


def _without_seconds(out: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in jsonl(out, diagnostics=True)]


def test_results_are_the_same_on_every_run(run_cli) -> None:
    """Budgets are counted in work, not seconds: two runs give byte-identical results but the
    time, and so do runs that check one machine at a time or several side by side."""
    argv = ["check", "--json", "spec/examples/peterson.rf", str(SPECS / "ok" / "token_ring.rf"),
            str(SPECS / "counterexample" / "fairness.rf")]
    first = _without_seconds(run_cli(*argv)[1])
    second = _without_seconds(run_cli(*argv)[1])
    assert first == second and len(first) > 5
    for jobs in ("1", "4"):
        assert _without_seconds(run_cli(*argv, "--jobs", jobs)[1]) == first
    machines = [r["machine"] for r in first]
    assert machines == sorted(machines, key=machines.index) and len(set(machines)) > 2  # in file order, grouped


@pytest.mark.slow
def test_ctrl_c_stops_check_promptly_with_partial_results() -> None:
    # A background job (pytest started with `&`) ignores SIGINT, and a child inherits that: restore it.
    proc = subprocess.Popen([sys.executable, "-m", "racefree.cli.main", "check", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first property is streamed before the rest are checked
        assert json.loads(first)["verdict"] in ("holds", "violated")
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ------------------------------------------------------------------ imports


def test_a_variant_may_extend_a_machine_of_another_file(run_cli, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "fifo.rf").write_text(FIFO)
    (tmp_path / "lib" / "also.rf").write_text('import "fifo.rf"\nmachine Bigger extends Fifo\n  override const C = 5\n')
    exp = tmp_path / "experiment.rf"
    exp.write_text('import "lib/fifo.rf"\nimport "lib/also.rf"\n'  # a diamond: fifo.rf is read once
                   "machine FifoGuarded extends Fifo\n  override action put\n    requires count < C\n"
                   "    count := count + 1\n  strict_bounds\n"
                   "machine BiggerGuarded extends Bigger\n  strict_bounds\n  expect in_bounds violated\n")
    code, out, err = run_cli("check", str(exp), "--json", "--no-diagnostics")
    assert code == 0, err
    rows = jsonl(out)
    assert {r["machine"] for r in rows} == {"FifoGuarded", "BiggerGuarded"}  # imported machines are bases only
    assert next(r for r in rows if r["machine"] == "FifoGuarded" and r["property"] == "in_bounds")["verdict"] == "holds"
    (tmp_path / "lib" / "fifo.rf").write_text('import "../experiment.rf"\n' + FIFO)
    code, _, err = run_cli("check", str(exp))
    assert code == 2 and "error[RF017]" in err and "closes a cycle" in err
    exp.write_text('import "lib/nope.rf"\n')
    code, _, err = run_cli("check", str(exp))
    assert code == 2 and err.startswith(f"{exp}:1:8: error[RF002]")


def test_an_instance_too_large_to_ground_is_unknown_at_once(run_cli) -> None:
    """W = 10^6 writers: six million ground actions. No engine starts (it would grow to gigabytes
    before its first answer); every property says why, and the exit code is not 0."""
    for engine in ("auto", "explicit"):
        code, out, _ = run_cli("check", "spec/examples/slots.rf", "--machine", "Slots", "--const", "W=1000000",
                               "--json", "--engine", engine)
        rows = jsonl(out)
        assert code == 1 and {r["verdict"] for r in rows} == {"unknown"}
        assert all("ground action instances" in r["detail"] and "--const" in r["detail"] for r in rows)


@pytest.mark.slow
def test_ctrl_c_on_the_demo_leaves_no_folder_and_no_process(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "racefree.cli.main", "demo", "ckpt", "--steps", "40", "--lag", "0.5"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not _workers(tmp_path) and time.monotonic() < deadline:  # the run is under way
            time.sleep(0.2)
        assert _workers(tmp_path), "no worker started"
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("racefree-")] == []  # its folder went too
    assert _workers(tmp_path) == []  # and no worker outlived the launcher


def _workers(root: Path) -> list[int]:
    """Pids of ckpt workers whose command line names a folder under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "racefree.runtime.ckpt.worker" in cmd and str(root) in cmd:
            found.append(int(entry.name))
    return found

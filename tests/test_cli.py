"""The CLI's contract: JSON shape, exit codes, explain output, bundled specs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import EXAMPLES, ROOT, jsonl

KEYS = {"file", "machine", "property", "kind", "verdict", "method", "bound", "seconds", "expected",
        "trace", "certificate", "states"}


def test_json_reports_proofs_and_replayed_counterexamples(run_cli) -> None:
    code, out, _ = run_cli("check", "--json", "spec/examples/slots.rf", "--machine", "Slots",
                           "--machine", "SlotsForgetfulConsume")
    assert code == 0
    rows = jsonl(out)
    assert [(r["machine"], r["property"]) for r in rows] == [
        ("Slots", "single_finaliser"), ("Slots", "deadlock_free"),
        ("SlotsForgetfulConsume", "single_finaliser"), ("SlotsForgetfulConsume", "deadlock_free")]
    for r in rows:
        assert set(r) >= KEYS
        assert r["kind"] == "invariant"
    proof, _, cex, _ = rows
    assert proof["verdict"] == "holds" and proof["method"] == "proof" and proof["bound"] is None
    assert "forall s: Slot. " in proof["certificate"] and "fin[s]" in proof["certificate"]  # folded per slot
    # the writers and slots are symmetric: the search keeps one state per orbit
    assert cex["verdict"] == "violated" and cex["method"] == "explicit" and cex["replayed"] is True
    assert "up to symmetry" in cex["detail"]
    trace = cex["trace"]
    assert len(trace) == 6 and cex["bound"] == 5
    assert trace[0]["action"] is None and trace[0]["role"] is None
    assert [s["action"] for s in trace[1:]] == ["claim", "finalise", "consume", "claim", "finalise"]
    assert {s["role"] for s in trace[1:]} == {"writer", "reader"}
    last = trace[-1]["state"]["fin"]
    assert any(len(v) == 2 for v in last.values())


def test_check_const_checks_the_machines_at_other_sizes(run_cli) -> None:
    code, out, _ = run_cli("check", "--json", "spec/examples/slots.rf", "--machine", "Slots",
                           "--machine", "SlotsForgetfulConsume", "--const", "W=2", "--const", "S=2")
    assert code == 0
    proof, _, cex, _ = jsonl(out)
    assert proof["consts"] == {"W": 2, "S": 2} and proof["verdict"] == "holds"
    assert "1 in fin[s]" in proof["certificate"] and "2 in fin" not in proof["certificate"]  # two writers, not three
    assert cex["verdict"] == "violated" and set(cex["trace"][-1]["state"]["fin"]) == {"0", "1"}
    code, out, _ = run_cli("check", "spec/examples/slots.rf", "--machine", "Slots", "--const", "S=2", "--quiet")
    assert code == 0 and out.startswith("instance: S=2")
    for argv, why in [(["spec/examples/slots.rf", "--const", "S=2"], "needs one spec file and --machine"),
                      (["--machine", "Slots", "--const", "S=2"], "needs one spec file and --machine"),
                      (["spec/examples/slots.rf", "--machine", "Slots", "--const", "S"], "is not NAME=INTEGER"),
                      (["spec/examples/slots.rf", "--machine", "Slots", "--const", "Q=1"], "unknown constant"),
                      (["spec/examples/slots.rf", "--machine", "Nope", "--const", "S=1"], "unknown machine")]:
        code, out, err = run_cli("check", *argv)
        assert code == 2 and why in err and "Traceback" not in err and out == "", (argv, err)


def test_json_reports_liveness_lassos_and_proofs(run_cli) -> None:
    # S = 8: 5.7 million states, past the state graph's limit, so liveness-to-safety proves it.
    code, out, _ = run_cli("check", "--json", "spec/examples/slots.rf", "--machine", "SlotsLive",
                           "--const", "S=8", "--property", "ready_is_consumed")
    assert code == 0
    proof = jsonl(out)[0]
    assert proof["kind"] == "liveness" and proof["verdict"] == "holds"
    assert proof["method"] == "proof" and proof["bound"] is None and "liveness-to-safety" in proof["certificate"]
    code, out, _ = run_cli("check", "--json", "spec/examples/slots.rf", "--machine", "SlotsLiveUnfairReader")
    assert code == 0
    rows = {(r["machine"], r["property"]): r for r in jsonl(out)}
    lasso = rows[("SlotsLiveUnfairReader", "ready_is_consumed")]
    assert lasso["kind"] == "liveness" and lasso["verdict"] == "violated" and lasso["method"] == "lasso"
    assert lasso["replayed"] is True
    marks = [s["loop_start"] for s in lasso["trace"]]
    assert marks.count(True) == 1 and marks.index(True) == lasso["loop_start"]
    assert lasso["trace"][-1]["state"] == lasso["trace"][lasso["loop_start"]]["state"]
    assert "consume" in [s["action"] for s in lasso["trace"][lasso["loop_start"] + 1:]]


def test_mismatch_exits_1(run_cli, tmp_path) -> None:
    spec = tmp_path / "wrong.rf"
    spec.write_text("machine M\n  var x: 0..3 = 0\n  action inc\n    x := x + 1\n"
                    "  invariant small: x < 3\n  expect small holds\n  terminal top: x == 3\n")
    code, out, _ = run_cli("check", str(spec))
    assert code == 1
    assert "MISMATCH" in out and "1 not as expected" in out


def test_property_without_expect_must_hold(run_cli, tmp_path) -> None:
    spec = tmp_path / "noexpect.rf"
    spec.write_text("machine M\n  var x: 0..3 = 0\n  action inc\n    x := x + 1\n  invariant small: x < 3\n"
                    "  terminal top: x == 3\n")
    code, out, _ = run_cli("check", "--json", str(spec))
    assert code == 1
    row, deadlock = jsonl(out)
    assert row["expected"] is None and row["verdict"] == "violated"
    assert deadlock["property"] == "deadlock_free" and deadlock["verdict"] == "holds"


def test_missing_file_is_bad_input(run_cli) -> None:
    code, out, err = run_cli("check", "no/such/file.rf")
    assert code == 2 and out == ""
    assert err.startswith("no/such/file.rf:1:1: error[RF002]")


def test_explain_prints_mermaid(run_cli) -> None:
    code, out, _ = run_cli("explain", "spec/examples/peterson.rf", "PetersonTurnFirst", "mutual_exclusion")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert "participant process" in out
    assert sum("process->>state:" in ln for ln in lines) == 6
    assert lines[-1].strip() == "Note over state: mutual_exclusion violated"


@pytest.mark.slow
def test_bundled_specs_match_their_expectations(run_cli) -> None:
    code, out, _ = run_cli("check", "--json")
    rows = jsonl(out)
    assert code == 0 and rows, "bundled specs are found"
    assert all(r["verdict"] == (r["expected"] or "holds") for r in rows)
    assert {r["kind"] for r in rows} == {"invariant", "liveness"}


def test_bmc_alone_never_claims_a_proof(run_cli) -> None:
    code, out, _ = run_cli("check", "--json", "--engine", "bmc", "--depth", "8", "spec/examples/peterson.rf")
    for r in jsonl(out):
        if r["expected"] == "violated":
            assert r["verdict"] == "violated"
        else:
            assert r["verdict"] == "unknown" and r["bound"] == 8


def test_console_script_runs_without_traceback_on_bad_spec(tmp_path) -> None:
    bad = tmp_path / "bad.rf"
    bad.write_text("machine M\n  var x: 0..3 = 9\n")
    proc = subprocess.run([sys.executable, "-m", "racefree.cli.main", "check", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error[RF021]" in proc.stderr


def test_check_runs_in_process_where_fork_is_missing(monkeypatch) -> None:
    """On a platform without fork (Windows) machines are checked one after another, in order."""
    import multiprocessing

    from racefree.cli import parallel
    from racefree.spec.loader import load_file

    machines = load_file(EXAMPLES / "slots.rf").machines
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])

    def check(m, progress):
        yield "result", m.name
        yield "note", m.name

    out = list(parallel.check_machines(machines, check, 2, lambda message: None))
    assert out == [(i, kind, m.name) for i, m in enumerate(machines) for kind in ("result", "note")]

"""The benchmark scripts run (a smoke test with tiny instances; speed is measured only in bench/)."""

from __future__ import annotations

import sys

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import liveness  # noqa: E402
import slots  # noqa: E402


def test_slot_benchmark_paths_run() -> None:
    assert set(slots.prove_phases(slots.instance(2, 2, False), "single_finaliser")) >= {"encode", "spacer"}
    assert slots.bmc_time(slots.instance(2, 2, True), "single_finaliser")[1] == 5
    assert slots.explicit_time(slots.instance(2, 2, False), "single_finaliser")[1] == 25


def test_liveness_benchmark_paths_run() -> None:
    liveness.prove_time(liveness.instance(2, 2, "SlotsLive"))
    assert liveness.lasso_time(liveness.instance(2, 2, "SlotsLiveUnfairReader"))[1] == 3  # claim, finalise, stutter


def test_runtime_benchmark_paths_run(tmp_path) -> None:
    import generated_runtime as runtime  # bench/generated_runtime.py

    rows = dict(runtime.transition_table(30, 1))
    assert len(rows) == 6 and all(us > 0 for us in rows.values())
    assert all(us > 0 for us in runtime.lock_idioms(30, 1))
    runtime.write_trace(tmp_path / "t.jsonl", 300)
    rate, parse_rate, events = runtime.replay_rate(tmp_path / "t.jsonl")
    assert events == 300 and rate > 0 and parse_rate > 0


def test_ckpt_benchmark_paths_run() -> None:
    import pytest

    pytest.importorskip("torch")
    import ckpt  # bench/ckpt.py

    row = ckpt.bookkeeping_row(0.25, 3)
    assert row["step_ms"] > 0 and row["bare_ms"] > 0 and row["bookkeeping_ms"] > 0 and row["digest_ms"] > 0


def test_explicit_benchmark_paths_run() -> None:
    import explicit  # bench/explicit.py

    seconds, states, searching = explicit.racefree(explicit.SLOTS, "Slots", {"W": 2, "S": 2})
    assert states == 25 and seconds >= searching > 0
    assert "d_step" in explicit.promela(2, 2)
    ref = explicit.spin(2, 2)  # None where SPIN is not installed: it is never a dependency
    assert ref is None or ref[1] == 26  # SPIN's initial state precedes the init block


def test_sched_benchmark_paths_run() -> None:
    import gpu_sched as sched_bench  # bench/gpu_sched.py

    total, planner, cycles = sched_bench.planning(2, 4, 1)
    assert cycles == 2 and 0 < planner <= total
    st = sched_bench.steady(2, 4, 1)
    assert st["cycles"] > 0 and 0 < st["planner_ms"] + st["machine_ms"] <= st["ms"]


def test_transport_benchmark_paths_run() -> None:
    import pytest

    pytest.importorskip("ucxx")
    import slot_ring  # bench/slot_ring.py: raw UCXX and the fenced transport, each a server process

    assert slot_ring.raw_time(1 << 16, 3) > 0
    assert slot_ring.fenced_time(1 << 16, 3) > 0

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
    assert liveness.lasso_time(liveness.instance(2, 2, "SlotsLiveUnfairReader"))[1] == 5

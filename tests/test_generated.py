"""The emitted Hypothesis state machines (runtime/generated/model_*.py): every bundled machine's
generated runtime is driven by random enabled and disabled calls and compared with the
interpreter at every step, its invariants against the spec's."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import racefree.runtime.generated as generated
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test


def _models() -> list[type]:
    out = []
    for info in pkgutil.iter_modules(generated.__path__):
        if info.name.startswith("model_"):
            mod = importlib.import_module(f"{generated.__name__}.{info.name}")
            out += [getattr(mod, name) for name in mod.__all__]
    return out


MODELS = _models()


def test_every_bundled_machine_has_a_model() -> None:
    machines = {m.MACHINE.MACHINE for m in MODELS}
    assert {"Slots", "Peterson", "SlotRingFenced", "GpuAllocFenced", "CkptFenced", "CkptPreFix"} <= machines
    assert len(machines) == 22


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_generated_machine_matches_the_interpreter(model: type) -> None:
    run_state_machine_as_test(model, settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_the_model_harness_has_teeth() -> None:
    """A generated machine that differs from its spec (here: the forgetful consume) is caught."""
    from racefree.runtime.generated.model_slots import SlotsModel
    from racefree.runtime.generated.slots_forgetful_consume import SlotsForgetfulConsume

    class Drifted(SlotsModel):
        def __init__(self) -> None:
            super().__init__()
            self.machine = SlotsForgetfulConsume()  # type: ignore[assignment]

    with pytest.raises(AssertionError):
        run_state_machine_as_test(Drifted, settings=settings(max_examples=200, stateful_step_count=30, report_multiple_bugs=False,
                                                             deadline=None, derandomize=True))

"""Architecture contracts: z3 stays inside verification/, the spec layer imports nothing above it."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import ROOT

LAYERS = ["spec", "codegen", "runtime", "cli", "verification"]


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_z3_only_in_verification() -> None:
    for layer in LAYERS:
        if layer == "verification":
            continue
        for path in (ROOT / layer).rglob("*.py"):
            assert not any(m == "z3" or m.startswith("z3.") for m in _imports(path)), path


def test_spec_depends_on_nothing_above_it() -> None:
    for path in (ROOT / "spec").rglob("*.py"):
        for mod in _imports(path):
            assert not mod.startswith(("racefree.verification", "racefree.cli", "racefree.codegen",
                                       "racefree.runtime")), (path, mod)


def test_importing_spec_and_runtime_does_not_load_z3() -> None:
    code = ("import sys, racefree.spec.loader, racefree.spec.interp, racefree.runtime; "
            "sys.exit(1 if 'z3' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_runtimes_never_load_z3_or_the_cli() -> None:
    """Trainers import the ckpt, scheduler and transport runtimes: they build machines through codegen,
    never the engines."""
    for path in (ROOT / "runtime").rglob("*.py"):
        for mod in _imports(path):
            assert not mod.startswith(("racefree.verification", "racefree.cli")), (path, mod)
    code = ("import sys, racefree.runtime.ckpt.worker as w, racefree.runtime.ckpt.demo; "
            "from racefree.codegen.instance import machine_class; "
            "from racefree.runtime.ckpt.config import spec_path; "
            "machine_class(spec_path(), 'CkptFenced', {'M': 3}); "
            "import racefree.runtime.gpu_sched.demo, racefree.runtime.gpu_sched.handle; "
            "from racefree.runtime.gpu_sched import SchedConfig, SchedulerCore; "
            "SchedulerCore(SchedConfig(pipelines=3, gpus=6)).cycle(); "
            "import racefree.runtime.slot_ring.worker, racefree.runtime.slot_ring.demo; "
            "from racefree.runtime.slot_ring import RingConfig, SlotRing; "
            "r = SlotRing(RingConfig(slots=3, slot_bytes=128)); r.write(fill=lambda b: 8); r.close(); "
            "sys.exit(1 if 'z3' in sys.modules or 'racefree.verification' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

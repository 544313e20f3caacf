"""The fast explicit engine against SPIN and against the reference interpreter, in the same run.

    python bench/explicit.py              # W=3 S=6 and W=3 S=8, slot_ring pre_fix
    python bench/explicit.py --quick      # W=3 S=4 only (what tests/test_bench.py runs)

The slot benchmark (spec/examples/slots.rf) is written in Promela as one process whose loop
has one `d_step` per ground action (guard, then updates, then the invariant asserted on the
slot it changed), so SPIN explores exactly racefree's states. SPIN's time is `spin -a` plus
`gcc -O2` plus the run (`-DSAFETY`, one process: partial-order reduction has nothing to do),
both depth-first (its default) and breadth-first (`-DBFS`); the ratio is against the faster.
SPIN's state count has one more state than racefree's: its initial state precedes the
`init` block's first step. racefree's time includes loading the spec and compiling the
machine to numpy; the side-by-side run is without symmetry reduction (SPIN has none here), a
second table gives the reduced search. SPIN is not a
racefree dependency: without `spin` and `gcc` on PATH its columns say "not installed"
(Debian: apt-get install spin). Prints markdown.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_instance
from racefree.verification.bfs import PackedMachine, search
from racefree.verification.explicit import explore
from racefree.verification.symmetry import Symmetry

ROOT = Path(__file__).resolve().parent.parent
SLOTS = ROOT / "spec" / "examples" / "slots.rf"
SLOT_RING = ROOT / "spec" / "protocols" / "slot_ring.rf"


def promela(w: int, s: int) -> str:
    """The slot benchmark in Promela: FREE=0, WRITING=1, READY=2; owner W = none; fin a bit mask."""
    arms = []
    for x in range(s):
        single = f"(fin[{x}] & (fin[{x}] - 1)) == 0"
        for y in range(w):
            arms.append(f":: d_step {{ state[{x}] == 0 -> state[{x}] = 1; owner[{x}] = {y} }}")
        for y in range(w):
            arms.append(f":: d_step {{ state[{x}] == 1 && owner[{x}] == {y} -> state[{x}] = 2; "
                        f"fin[{x}] = fin[{x}] | {1 << y}; assert({single}) }}")
        arms.append(f":: d_step {{ state[{x}] == 2 -> state[{x}] = 0; fin[{x}] = 0; owner[{x}] = {w} }}")
    body = "\n  ".join(arms)
    return (f"byte state[{s}]; byte owner[{s}]; byte fin[{s}];\n"
            f"init {{\n  d_step {{ byte i; for (i : 0 .. {s - 1}) {{ owner[i] = {w} }} }};\n"
            f"  do\n  {body}\n  od\n}}\n")


def spin(w: int, s: int, bfs: bool = False) -> tuple[float, int] | None:
    """SPIN's compile + run time and its stored-state count (depth-first, its default, or
    breadth-first with -DBFS), or None when SPIN is not installed."""
    if not (shutil.which("spin") and shutil.which("gcc")):
        return None
    # A hash table twice the state count, as a user would size it; depth-first search goes as
    # deep as the state count here (one process looping), so the depth bound must allow that.
    hash_bits = max(16, (2 * (w + w + 1) ** s).bit_length())
    flags = ["-DBFS"] if bfs else []
    run_args = [f"-w{hash_bits}"] + ([] if bfs else [f"-m{2 * (w + w + 1) ** s}"])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "slots.pml").write_text(promela(w, s))
        start = time.perf_counter()
        subprocess.run(["spin", "-a", "slots.pml"], cwd=tmp, check=True, capture_output=True)
        subprocess.run(["gcc", "-O2", "-DSAFETY", *flags, "-DMEMLIM=16000", "-o", "pan", "pan.c"], cwd=tmp,
                       check=True, capture_output=True)
        run = subprocess.run(["./pan", *run_args], cwd=tmp, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if "errors: 0" not in run.stdout:
        raise AssertionError(run.stdout)
    stored = int(re.search(r"(\d+) states, stored", run.stdout).group(1))  # type: ignore[union-attr]
    return seconds, stored


def racefree(path: Path, machine: str, consts: dict[str, int]) -> tuple[float, int, float]:
    """(seconds including load and compile, states, of which the search) of the fast engine."""
    start = time.perf_counter()
    m = load_instance(path, machine, consts)
    pm = PackedMachine(m, Interpreter(m))
    found = search(pm, 50_000_000)
    seconds = time.perf_counter() - start
    assert found.complete and not found.first_bad.get("single_finaliser")
    return seconds, found.size, found.seconds


def symmetric(path: Path, machine: str, consts: dict[str, int]) -> tuple[float, int, int]:
    """(seconds including load and compile, orbits, the states they hold) with symmetry reduction."""
    start = time.perf_counter()
    m = load_instance(path, machine, consts)
    pm = PackedMachine(m, Interpreter(m))
    found = search(pm, 50_000_000, symmetry=Symmetry(pm.layout, pm.fingerprints))
    seconds = time.perf_counter() - start
    assert found.complete and not found.first_bad.get("single_finaliser")
    return seconds, found.size, found.states_held


def interpreter(path: Path, machine: str, consts: dict[str, int]) -> tuple[float, int]:
    start = time.perf_counter()
    m = load_instance(path, machine, consts)
    interp = Interpreter(m)
    ex = explore(interp, {"single_finaliser": interp.invariants["single_finaliser"]}, max_states=50_000_000)
    return time.perf_counter() - start, ex.states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="W=3, S=4 only")
    args = ap.parse_args()
    sizes = [(3, 4)] if args.quick else [(3, 6), (3, 8)]
    print("## Fast explicit engine vs SPIN (slot benchmark)\n")
    print("| W | S | states | racefree (load + compile + search) | states/s | SPIN depth-first | SPIN breadth-first "
          "| SPIN states | racefree / best SPIN | interpreter | interpreter / racefree |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for w, s in sizes:
        seconds, states, searching = racefree(SLOTS, "Slots", {"W": w, "S": s})
        dfs, bfs = spin(w, s), spin(w, s, bfs=True)
        if dfs is None or bfs is None:
            spin_col = ("not installed", "not installed", "-", "-")
        else:
            assert dfs[1] == bfs[1]
            best = min(dfs[0], bfs[0])
            spin_col = (f"{dfs[0]:.2f} s", f"{bfs[0]:.2f} s", f"{dfs[1]:,}", f"{seconds / best:.2f}x")
        slow = interpreter(SLOTS, "Slots", {"W": w, "S": s}) if states <= 200_000 else None
        slow_col = ("skipped", "-") if slow is None else (f"{slow[0]:.2f} s", f"{slow[0] / seconds:.1f}x")
        print(f"| {w} | {s} | {states:,} | {seconds:.2f} s | {states / searching:,.0f} | " + " | ".join(spin_col)
              + f" | {slow_col[0]} | {slow_col[1]} |")
    print("\n## Symmetry reduction (Writer and Slot are symmetric types)\n")
    print("| W | S | orbits | states they hold | racefree with symmetry (load + compile + search) |")
    print("|---|---|---|---|---|")
    for w, s in sizes:
        seconds, orbits, held = symmetric(SLOTS, "Slots", {"W": w, "S": s})
        print(f"| {w} | {s} | {orbits:,} | {held:,} | {seconds:.2f} s |")
    if args.quick:
        return
    print("\n## slot_ring pre_fix (the whole state graph, edges kept, as `racefree check` builds it)\n")
    start = time.perf_counter()
    m = load_instance(SLOT_RING, "SlotRingPreFix", {})
    pm = PackedMachine(m, Interpreter(m))
    found = search(pm, 5_000_000, edges=True)
    seconds = time.perf_counter() - start
    print("| states | fast engine (load + compile + search) | target |")
    print("|---|---|---|")
    print(f"| {found.size:,} | {seconds:.2f} s | <= 2 s (the interpreter: ~20 s) |")


if __name__ == "__main__":
    main()

"""Slot benchmark: time-to-verdict per engine, with baselines measured in the same run.

    python bench/slots.py            # the W=3, S=6 targets and the scaling grid
    python bench/slots.py --quick    # targets only

Each figure is the median of --repeat runs in this process, printed next to a
baseline from the same run (a trivial one-variable spec through the same path),
so ratios stay comparable on a noisy machine. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_text
from racefree.verification.bmc import bmc
from racefree.verification.certificate import recheck, to_spec
from racefree.verification.encode import Encoding
from racefree.verification.explicit import explore
from racefree.verification.limits import Limits
from racefree.verification.prove import spacer_prove

ROOT = Path(__file__).resolve().parent.parent
SLOTS = (ROOT / "spec" / "examples" / "slots.rf").read_text()
TRIVIAL = """
machine Trivial
  var x: 0..1 = 0
  action flip
    x := 1 - x
  invariant ok: x <= 1
  invariant bad: x == 0
  expect bad violated
"""


def instance(w: int, s: int, bug: bool) -> str:
    base = "SlotsForgetfulConsume" if bug else "Slots"
    return SLOTS + f"\nmachine Bench extends {base}\n  override const W = {w}\n  override const S = {s}\n"


def median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def prove_phases(text: str, prop: str) -> dict[str, float]:
    """Encoding, Spacer and certificate (print + independent re-check), each timed."""
    m = load_text(text).machines[-1]
    t0 = time.perf_counter()
    enc = Encoding(m)
    formula = enc.invariant(m.invariant(prop).expr, enc.base)
    t1 = time.perf_counter()
    attempt = spacer_prove(enc, formula, Limits(0, 60_000))
    assert attempt.verdict == "holds" and attempt.invariant is not None
    t2 = time.perf_counter()
    recheck(enc, to_spec(attempt.invariant, enc), formula, Limits(0, 60_000))
    t3 = time.perf_counter()
    return {"encode": t1 - t0, "spacer": t2 - t1, "certificate": t3 - t2, "total": t3 - t0}


def bmc_time(text: str, prop: str) -> tuple[float, int]:
    m = load_text(text).machines[-1]
    t0 = time.perf_counter()
    enc = Encoding(m)
    trace, _, _ = bmc(enc, enc.invariant(m.invariant(prop).expr, enc.base), 40, Limits(0, 0))
    assert trace is not None
    return time.perf_counter() - t0, len(trace) - 1


def explicit_time(text: str, prop: str) -> tuple[float, int]:
    m = load_text(text).machines[-1]
    t0 = time.perf_counter()
    interp = Interpreter(m)
    ex = explore(interp, {prop: interp.invariants[prop]})
    return time.perf_counter() - t0, ex.states


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = args.repeat

    base_prove = median(lambda: prove_phases(TRIVIAL, "ok"), r)
    base_bmc = median(lambda: bmc_time(TRIVIAL, "bad"), r)
    base_explicit = median(lambda: explicit_time(TRIVIAL, "ok"), r)
    print(f"Baselines (trivial 1-variable spec, same code path): prove {base_prove * 1e3:.1f} ms, "
          f"bmc {base_bmc * 1e3:.1f} ms, explicit {base_explicit * 1e3:.2f} ms\n")

    good, bug = instance(3, 6, False), instance(3, 6, True)
    phases = [prove_phases(good, "single_finaliser") for _ in range(r)]
    ph = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    b = [bmc_time(bug, "single_finaliser") for _ in range(r)]
    bt, blen = statistics.median(x[0] for x in b), b[0][1]
    e = [explicit_time(good, "single_finaliser") for _ in range(max(1, r - 1))]
    et, states = statistics.median(x[0] for x in e), e[0][1]

    print("## W=3, S=6 targets\n")
    print("| check | target | measured | ratio to baseline |")
    print("|---|---|---|---|")
    print(f"| prove `single_finaliser` (encode + Spacer) | <= 0.6 s | {ph['encode'] + ph['spacer']:.3f} s "
          f"| {(ph['encode'] + ph['spacer']) / base_prove:.1f}x |")
    print(f"| ... plus certificate print + independent re-check | | {ph['total']:.3f} s "
          f"| {ph['total'] / base_prove:.1f}x |")
    print(f"| bmc, bug variant, shortest trace ({blen} steps) | <= 0.3 s | {bt:.3f} s | {bt / base_bmc:.1f}x |")
    print(f"| explicit, {states:,} states | <= 6 s | {et:.2f} s | {et / base_explicit:.0f}x |")
    print(f"\nProve phases (median): encode {ph['encode']:.3f} s, Spacer {ph['spacer']:.3f} s, "
          f"certificate {ph['certificate']:.3f} s")
    if args.quick:
        return

    print("\n## Growth with W and S (one run each; seconds)\n")
    print("| W | S | prove: encode + Spacer | + certificate | bmc (bug) | explicit states | explicit |")
    print("|---|---|---|---|---|---|---|")
    for w, s in [(2, 2), (3, 3), (3, 6), (4, 8), (6, 6), (6, 12)]:
        p = prove_phases(instance(w, s, False), "single_finaliser")
        bt2, _ = bmc_time(instance(w, s, True), "single_finaliser")
        states = (1 + w + w) ** s  # FREE, or (WRITING|READY) x owner: (1 + 2W)^S
        if states <= 200_000:
            et2, n = explicit_time(instance(w, s, False), "single_finaliser")
            ex = f"{et2:.2f}"
            assert n == states
        else:
            ex = "skipped"
        print(f"| {w} | {s} | {p['encode'] + p['spacer']:.3f} | {p['total']:.3f} | {bt2:.3f} | {states:,} | {ex} |")


if __name__ == "__main__":
    main()

"""Liveness on the slot benchmark: `ready_is_consumed` proven under fairness, lasso without it.

    python bench/liveness.py

Baseline: a trivial two-state liveness spec through the same code paths, in the
same run; figures are medians of --repeat runs. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import time

from racefree.spec.loader import load_text
from racefree.verification import liveness as live
from racefree.verification.encode import Encoding
from racefree.verification.limits import Limits
from slots import SLOTS, median

TRIVIAL = """
machine Trivial
  var on: bool = false
  action flip
    on := not on
  action stay
    on := on
  fair flip
  liveness blinks: always eventually on

machine TrivialUnfair extends Trivial
  drop fair flip
"""


def instance(w: int, s: int, variant: str) -> str:
    return SLOTS + f"\nmachine Bench extends {variant}\n  override const W = {w}\n  override const S = {s}\n"


def prove_time(text: str, machine: str = "Bench") -> float:
    m = next(x for x in load_text(text).machines if x.name == machine)
    t = time.perf_counter()
    enc = Encoding(m)
    insts = live.instances(enc, m.liveness[0])
    assert live.prove(enc, insts, Limits(0, 120_000)).holds
    return time.perf_counter() - t


def lasso_time(text: str, machine: str = "Bench") -> tuple[float, int]:
    """Encoding, the (failing) sliced proof that picks the symmetry classes, and the lasso search."""
    m = next(x for x in load_text(text).machines if x.name == machine)
    t = time.perf_counter()
    enc = Encoding(m)
    insts = live.instances(enc, m.liveness[0])
    proof = live.prove(enc, insts, Limits(0, 120_000))
    found, _, _ = live.shortest_lasso(enc, proof.representatives, 30, Limits(0, 0), "always")
    assert found is not None
    return time.perf_counter() - t, len(found[1].picks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = args.repeat
    base_p = median(lambda: prove_time(TRIVIAL, "Trivial"), r)
    base_l = median(lambda: lasso_time(TRIVIAL, "TrivialUnfair"), r)
    print(f"**Baselines** (trivial two-state spec, same code path): proof {base_p * 1e3:.1f} ms, "
          f"lasso {base_l * 1e3:.1f} ms\n")
    p = median(lambda: prove_time(instance(3, 6, "SlotsLive")), r)
    lasso = [lasso_time(instance(3, 6, "SlotsLiveUnfairReader")) for _ in range(r)]
    lt, steps = statistics.median(x[0] for x in lasso), lasso[0][1]
    print("## W=3, S=6 targets\n")
    print("| check | target | measured | ratio to baseline |")
    print("|---|---|---|---|")
    print(f"| prove `ready_is_consumed` for every slot (fair consume, finalise) | <= 10 s | {p:.3f} s | {p / base_p:.1f}x |")
    print(f"| lasso without fairness on consume ({steps} steps) | <= 1 s | {lt:.3f} s | {lt / base_l:.1f}x |")
    print("\n## Growth with W and S (one run each; seconds)\n")
    print("| W | S | proof | lasso |")
    print("|---|---|---|---|")
    for w, s in [(2, 2), (3, 3), (3, 6), (4, 8), (6, 6), (6, 12)]:
        print(f"| {w} | {s} | {prove_time(instance(w, s, 'SlotsLive')):.3f} | "
              f"{lasso_time(instance(w, s, 'SlotsLiveUnfairReader'))[0]:.3f} |")


if __name__ == "__main__":
    main()

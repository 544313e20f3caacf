"""Check every bundled protocol spec and print its verdict table (markdown) with timings.

    python bench/protocols.py            # tables for docs/protocols.md, and the totals

Targets (issue 4): all bundled specs <= 60 s; each counterexample <= 2 s; each proof <= 10 s.
A machine's state graph is built once and shared by its properties, so the first property
checked on a machine carries the cost of the enumeration; the table reports it separately.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from racefree.spec.loader import load_file
from racefree.verification.engine import MachineChecker, Options

ROOT = Path(__file__).resolve().parent.parent / "spec" / "protocols"


def main() -> None:
    grand = time.perf_counter()
    slow: list[str] = []
    for path in sorted(ROOT.glob("*.rf")):
        machines = load_file(path).machines
        cells: dict[str, dict[str, str]] = defaultdict(dict)
        props: list[str] = []
        costs = []
        for m in machines:
            mc = MachineChecker(m, Options())
            start = time.perf_counter()
            graph = mc.graph()  # built once here, so the per-property times below exclude it
            enum_s = time.perf_counter() - start
            for res in mc.check_all():
                if res.prop not in props:
                    props.append(res.prop)
                mark = "" if m.expected(res.prop) in (None, res.verdict) else " (MISMATCH)"
                how = f"{res.bound} steps" if res.verdict == "violated" else "unbounded" if res.bound is None else ""
                cells[m.name][res.prop] = f"{res.verdict}, {how}, {res.method}{mark}"
                limit = 2.0 if res.verdict == "violated" else 10.0
                if res.seconds > limit:
                    slow.append(f"{m.name}.{res.prop} {res.seconds:.2f} s")
            costs.append((m.name, graph.size if graph else None, enum_s, time.perf_counter() - start))
        print(f"\n### {path.stem}\n")
        print("| property | " + " | ".join(m.name for m in machines) + " |")
        print("|---|" + "---|" * len(machines))
        for p in props:
            if not p.startswith("lemma_"):  # the lemmas are summed up in one row
                print(f"| {p} | " + " | ".join(cells[m.name].get(p, "-") for m in machines) + " |")
        if any(p.startswith("lemma_") for p in props):
            print("| lemma_* | " + " | ".join(_lemmas(cells[m.name]) for m in machines) + " |")
        print("\n| machine | states | enumeration s | total s |\n|---|---|---|---|")
        for name, states, enum_s, total in costs:
            print(f"| {name} | {states if states is not None else 'too many'} | {enum_s:.2f} | {total:.2f} |")
    print(f"\nall bundled protocol specs: {time.perf_counter() - grand:.1f} s")
    print("over the per-property target (excluding shared enumeration): " + (", ".join(slow) or "none"))


def _lemmas(row: dict[str, str]) -> str:
    """How many of a machine's lemma_* invariants hold, and by which methods."""
    verdicts = [v for p, v in row.items() if p.startswith("lemma_")]
    if not verdicts:
        return "-"
    return f"{len(verdicts)}: " + "; ".join(sorted(set(verdicts)))


if __name__ == "__main__":
    main()

"""One entry point for checking a property: picks engines, replays, certifies.

``auto`` (the default) asks Spacer first: a proof is certified and reported as
unbounded; a refutation is handed to BMC for the *shortest* trace, which is
replayed; if Spacer gives up, k-induction is tried, then bounded search
(reported as ``unknown`` with the depth reached, never as ``holds``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import z3
from racefree.spec import ir
from racefree.spec.interp import Interpreter

from . import bmc as bmc_mod
from .certificate import CertificateRejected, recheck, to_spec
from .encode import Encoding
from .explicit import explore
from .prove import k_induction, spacer_prove
from .replay import replay
from .result import Result

EngineName = Literal["auto", "prove", "bmc", "explicit"]
Progress = Callable[[str], None]


@dataclass
class Options:
    engine: EngineName = "auto"
    depth: int = 30  # BMC / k-induction bound
    timeout: float = 60.0  # seconds per solver call
    max_states: int = 5_000_000
    progress: Progress = field(default=lambda msg: None)

    @property
    def timeout_ms(self) -> int:
        return max(1, int(self.timeout * 1000))


class MachineChecker:
    """Checks the invariants of one machine, sharing its encoding and interpreter across properties."""

    def __init__(self, m: ir.Machine, options: Options) -> None:
        self.m = m
        self.opt = options
        self.interp = Interpreter(m)
        self._enc: Encoding | None = None

    @property
    def enc(self) -> Encoding:
        if self._enc is None:
            self._enc = Encoding(self.m)
        return self._enc

    def check_all(self) -> list[Result]:
        if self.opt.engine == "explicit":
            return self._explicit([i.name for i in self.m.invariants])
        return [self.check(i.name) for i in self.m.invariants]

    def check(self, prop: str) -> Result:
        start = time.perf_counter()
        engine = self.opt.engine
        if engine == "explicit":
            return self._explicit([prop])[0]
        res = self._bmc(prop) if engine == "bmc" else self._prove(prop)
        res.seconds = time.perf_counter() - start
        return res

    # ---------------------------------------------------------------- engines
    def _prove(self, prop: str) -> Result:
        inv = self.m.invariant(prop).expr
        self.opt.progress(f"{self.m.name}.{prop}: Spacer")
        formula = self.enc.invariant(inv, self.enc.base)
        attempt = spacer_prove(self.enc, formula, timeout_ms=self.opt.timeout_ms)
        rejected = ""
        if attempt.verdict == "holds":
            assert attempt.invariant is not None
            self.opt.progress(f"{self.m.name}.{prop}: re-checking certificate")
            try:
                text = to_spec(attempt.invariant, self.enc)
                recheck(self.enc, text, inv, timeout_ms=self.opt.timeout_ms)
            except CertificateRejected as exc:
                # Never report an unchecked proof: fall back to the other engines.
                rejected = f"Spacer's invariant was rejected ({exc}); "
            else:
                detail = f"{attempt.slices} conjunct(s), {attempt.solved} distinct slice(s) solved by Spacer"
                return Result(self.m, prop, "holds", "proof", None, certificate=text, detail=detail)
        if attempt.verdict == "violated":
            return self._bmc(prop, until_found=True)
        self.opt.progress(f"{self.m.name}.{prop}: k-induction")
        k, verdict = k_induction(self.enc, formula, max_k=min(self.opt.depth, 10), timeout_ms=self.opt.timeout_ms)
        if k is not None:
            return Result(self.m, prop, "holds", "k-induction", None, detail=rejected.rstrip("; "),
                          certificate=f"{prop} is {k}-inductive (base case and step re-checked at k={k})")
        if verdict == "violated":
            return self._bmc(prop, until_found=True)
        res = self._explicit([prop])[0]
        res.detail = rejected + res.detail
        return res

    def _bmc(self, prop: str, until_found: bool = False) -> Result:
        depth = self.opt.depth * (4 if until_found else 1)

        def progress(d: int) -> None:
            self.opt.progress(f"{self.m.name}.{prop}: BMC depth {d}")

        trace, reached, timed_out = bmc_mod.bmc(self.enc, prop, depth, timeout_ms=self.opt.timeout_ms,
                                                on_depth=progress)
        if trace is None:
            why = "solver timeout" if timed_out else "no counterexample up to this depth"
            return Result(self.m, prop, "unknown", "bmc", reached, detail=why)
        replay(self.interp, prop, trace)
        return Result(self.m, prop, "violated", "bmc", len(trace) - 1, trace=trace, replayed=True,
                      detail="shortest counterexample; replayed through the interpreter")

    def _explicit(self, props: list[str]) -> list[Result]:
        start = time.perf_counter()

        def progress(depth: int, states: int) -> None:
            self.opt.progress(f"{self.m.name}: explicit depth {depth}, {states:,} states")

        ex = explore(self.interp, props, max_states=self.opt.max_states, on_progress=progress)
        seconds = time.perf_counter() - start
        out = []
        for prop in props:
            trace = ex.violations.get(prop)
            if trace is not None:
                replay(self.interp, prop, trace)
                out.append(Result(self.m, prop, "violated", "explicit", len(trace) - 1, seconds, trace,
                                  replayed=True, states=ex.states, detail="shortest (breadth-first)"))
            elif ex.complete:
                out.append(Result(self.m, prop, "holds", "explicit", None, seconds, states=ex.states,
                                  detail="every reachable state of this instance enumerated"))
            else:
                out.append(Result(self.m, prop, "unknown", "explicit", ex.depth, seconds, states=ex.states,
                                  detail=f"stopped at {ex.states:,} states (--max-states)"))
        return out


def z3_version() -> str:
    return z3.get_version_string()

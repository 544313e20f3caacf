"""The gap-ratio planner (runtime/gap_ratio.py) against the gpu_alloc contract K1-K6 and the brief's examples."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from racefree.runtime.gap_ratio import Pipeline, Plan, plan

NG = 4


def contract_violations(ps: list[Pipeline], idle: set[int], reserved: set[int], out: Plan) -> list[str]:
    """K1-K6 of the brief (TP = 1), as a list of the clauses the plan breaks."""
    bad = []
    by = {p.pid: p for p in ps}
    shr = [(q, w) for q, w in out.shrinks]
    exp = [(q, d) for q, d in out.expansions]
    gained = [by[q].bundle(d) for q, d in exp]
    freed = set().union(*[by[q].bundle(w) for q, w in shr]) if shr else set()
    pool = (set(idle) - set(reserved)) | freed
    used: set[int] = set()
    for b in gained:  # K1
        if b & used or not b <= pool:
            bad.append("K1")
        used |= b
    if set(shr) & set(exp):
        bad.append("K1 shrunk and re-added")
    visible = {p.pid for p in ps if p.streams or (p.open and p.est >= 1)}
    for q, _ in shr + exp:  # K2
        if q not in visible:
            bad.append("K2")
    elig = {p.pid for p in ps if p.pid in visible and not p.removing and (p.open or p.active or p.holds_gen)}
    for q, _ in exp:  # K3
        if q not in elig or not (by[q].open or by[q].holds_gen):
            bad.append("K3 receiver")
    if {q for q, _ in shr} & {q for q, _ in exp}:
        bad.append("K3 both")
    if freed and not freed & used:
        bad.append("K3 useless shrink")

    def weight(p: Pipeline) -> float:
        st_ = sum(max(t, 1) for t, _ in p.streams)
        rem = float(sum(t - min(c, t) for t, c in p.streams)) if p.streams and st_ > 0 else float(p.est)
        return rem + ((st_ if p.streams else p.est) if p.open else 0)

    after = {p.pid: out.active_after(p) for p in ps}
    for p in ps:  # K4
        if p.pid in elig and weight(p) > 0 and p.active and not after[p.pid]:
            bad.append("K4")
    needy = [p for p in ps if p.pid in elig and weight(p) > 0 and not p.active]
    W = sum(weight(p) for p in ps if p.pid in elig)
    keep = {p.pid: (1 if p.pid in elig and W > 0 else 0) for p in ps}
    slack = len(set(idle) - set(reserved)) + sum(max(len(p.active) - keep[p.pid], 0) for p in ps if p.pid in visible)
    if len(needy) <= slack:  # K5
        bad += [f"K5 {p.pid}" for p in needy if not after[p.pid] and (p.open or p.holds_gen)]
    if used & set(reserved):  # K6
        bad.append("K6")
    return bad


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Pipeline], set[int], set[int]]:
    n = draw(st.integers(2, 3))
    owner = draw(st.lists(st.integers(-2, n - 1), min_size=NG, max_size=NG))  # -2 reserved, -1 idle
    ps = []
    for pid in range(n):
        streams = tuple(draw(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 4)), max_size=2)))
        is_open = draw(st.booleans())
        ps.append(Pipeline(pid, tuple(range(NG)), 1, tuple(g for g in range(NG) if owner[g] == pid), streams,
                           is_open, draw(st.integers(0, 3)) if is_open else 0, draw(st.booleans())))
    idle = {g for g in range(NG) if owner[g] == -1}
    reserved = {g for g in range(NG) if owner[g] == -2}
    return ps, idle, reserved


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_floor_pass_meets_the_contract(case: tuple[list[Pipeline], set[int], set[int]]) -> None:
    ps, idle, reserved = case
    out = plan(ps, idle, reserved, floor=True)
    assert contract_violations(ps, idle, reserved, out) == []


def test_skewed_weights_break_k5_without_the_floor_pass() -> None:
    # The brief's example: 4 GPUs, 2 held by training; P1 (weight 3) holds the other 2; P2
    # (weight 1) is open with no rank. Targets 2 and 1: P1's donor budget is 0.
    p1 = Pipeline(1, (0, 1, 2, 3), active=(2, 3), streams=((6, 0),), holds_gen=True)
    p2 = Pipeline(2, (0, 1, 2, 3), open=True, est=1)
    upstream = plan([p1, p2], idle=set(), reserved={0, 1})
    assert upstream.expansions == [] and "K5 2" in contract_violations([p1, p2], set(), {0, 1}, upstream)
    fenced = plan([p1, p2], idle=set(), reserved={0, 1}, floor=True)
    assert fenced.expansions == [(2, 2)] and fenced.shrinks == [(1, 2)]
    assert contract_violations([p1, p2], set(), {0, 1}, fenced) == []


def test_alone_an_open_pipeline_takes_every_free_gpu() -> None:
    # Trace A, step 1 (and trace B, step 3): P1 is open and alone, so its target is 4.
    p1 = Pipeline(1, (0, 1, 2, 3), open=True, est=1, holds_gen=True)
    out = plan([p1], idle={0, 1, 2, 3})
    assert sorted(d for _, d in out.expansions) == [0, 1, 2, 3] and out.idle == frozenset()


def test_two_visible_pipelines_split_the_pool() -> None:
    # Trace B, step 4: P1 holds 0-3, P2 reports; targets 2/2, so two of P1's ranks move to P2.
    p1 = Pipeline(1, (0, 1, 2, 3), active=(0, 1, 2, 3), streams=((1, 0),), holds_gen=True)
    p2 = Pipeline(2, (0, 1, 2, 3), streams=((1, 0),), holds_gen=True)
    out = plan([p1, p2], idle=set())
    assert len(out.expansions) == 2 and {q for q, _ in out.expansions} == {2}
    assert {q for q, _ in out.shrinks} == {1} and len(out.active_after(p1)) == 2


def test_an_invisible_pipeline_is_untouched() -> None:
    # K2: with no report and no open demand, P1 neither donates nor receives (trace A's hang).
    p1 = Pipeline(1, (0, 1, 2, 3), active=(), holds_gen=True)
    p2 = Pipeline(2, (0, 1, 2, 3), active=(0, 1, 2, 3), streams=((1, 0),), holds_gen=True)
    out = plan([p1, p2], idle=set())
    assert all(q != 1 for q, _ in out.shrinks + out.expansions)

"""The bundled seed protocols: pinned state counts, and every violated cell is the brief's bug.

For each violated (machine, property) the counterexample must be replayed, no longer than
the brief's trace, break the property at its last step only, and (where the model's steps
match the brief's one for one) follow the brief's interleaving action by action.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from racefree.spec import ir
from racefree.spec.interp import Interpreter
from racefree.spec.loader import load_file, load_instance, load_text
from racefree.verification.engine import MachineChecker, Options
from racefree.verification.explicit import explore
from racefree.verification.result import STUTTER

PROTOCOLS = Path(__file__).resolve().parent.parent / "spec" / "protocols"

# Reachable states of each variant's default instance (explicit engine).
STATE_COUNTS = {
    "SlotRingPreFix": 367_841, "SlotRingPostFix": 120_253, "SlotRingFenced": 76_441,
    "SlotRingFencedLeaseReaper": 121_717,
    "GpuAllocPreFix": 256, "GpuAllocHooksWired": 65_038, "GpuAllocPostFix": 201_393, "GpuAllocFenced": 98_470,
    "CkptPreFix": 1_873, "CkptPostFix": 2_623, "CkptPostFixEval": 21_252, "CkptPostFixResume": 33_732,
    "CkptPostFixResumePrune": 9_340, "CkptFenced": 218_424,
    # past the state graph's size (over 4.8 million states each): checked without the graph
    "GpuAllocHooksWiredTwoRollouts": None, "GpuAllocPostFixTwoRollouts": None,
}

# (machine, property) -> (the brief's trace and its length, the expected action sequence or None)
W, CL, IS, FAN, AC, SS, SE, F, FZ, RV, TO = ("write", "claim", "issue", "issue_fanout", "accept", "send_start",
                                             "send_end", "fail", "finalise", "recv", "timeout")
CYCLE = ["plan", "commit"]
INIT = ["req_train_init", *CYCLE, "rel_train_init", "req_infer_init", *CYCLE, "rel_infer_init",
        "req_gen_init", "plan", "move", "commit"]
STEP = ["ship", "train", "publish_open", "publish_close", "clean"]
CELLS: dict[tuple[str, str], tuple[str, int, list[str] | None]] = {
    ("SlotRingPreFix", "single_owner_finalise"): ("X1", 8, [W, CL, FAN, AC, AC, F, F, FZ]),
    ("SlotRingPreFix", "no_torn_delivery"): ("X9 path", 7, [W, CL, IS, AC, SS, F, RV]),
    ("SlotRingPreFix", "at_most_once"): ("X4", 14, [W, W, CL, CL, IS, IS, AC, AC, SS, SS, SE, RV, SE, RV]),
    ("SlotRingPreFix", "no_silent_loss"): ("X5", 14, None),
    ("SlotRingPreFix", "no_ghost_ready"): ("X6", 12, None),
    ("SlotRingPreFix", "ready_count_exact"): ("X7", 4, [W, CL, IS, AC]),
    ("SlotRingPreFix", "guarded_finalisers"): ("X8", 12, None),
    ("SlotRingPreFix", "endpoint_in_sync"): ("X9", 7, [W, CL, IS, AC, SS, F, RV]),
    ("SlotRingPostFix", "single_owner_finalise"): ("X2", 9, [W, CL, IS, TO, IS, AC, AC, F, FZ]),
    ("SlotRingPostFix", "no_torn_delivery"): ("X9 path", 7, [W, CL, IS, AC, SS, F, RV]),
    ("SlotRingPostFix", "at_most_once"): ("X4", 14, [W, W, CL, CL, IS, IS, AC, AC, SS, SS, SE, RV, SE, RV]),
    ("SlotRingPostFix", "no_silent_loss"): ("X5", 14, None),
    ("SlotRingPostFix", "no_ghost_ready"): ("X6", 12, None),
    ("SlotRingPostFix", "endpoint_in_sync"): ("X9", 7, [W, CL, IS, AC, SS, F, RV]),
    ("GpuAllocPreFix", "no_empty_dispatch"): ("A", 23, INIT + ["req_train_init", *CYCLE, "rel_train_init",
                                                              "req_infer_init", *CYCLE, "rel_infer_init",
                                                              "req_gen_init", "plan", "move", "commit", "dispatch"]),
    ("GpuAllocHooksWired", "no_empty_dispatch"): ("A prefix", 23, None),
    ("GpuAllocPostFix", "no_empty_dispatch"): ("G", 33, None),
    ("CkptPreFix", "no_delete_before_load"): ("T1", 23, ["clean"] + STEP + ["poll_start"] + STEP + STEP[:4] + ["clean"]),
    ("CkptPreFix", "async_bound"): ("T2", 3, ["ship", "ship", "ship"]),
    ("CkptPostFix", "bounded_disk"): ("T3", 32, None),
    ("CkptPostFixEval", "no_delete_before_load"): ("T4", 29, None),
    ("CkptPostFixResume", "loaded_marker_sound"): ("T5", 22, None),
    ("CkptPostFixResume", "no_torn_read"): ("T6", 20, None),
    ("CkptPostFixResume", "monotone_load"): ("T7", 29, None),
    ("CkptPostFixResumePrune", "no_delete_before_load"): ("T8", 66, None),
}
# Liveness cells: the brief's prefix length is reported for reference; an SCC lasso is fair
# but not necessarily shortest (see the closing note of issue 4).
LASSOS = {("SlotRingPreFix", "writer_progress"), ("SlotRingPostFix", "writer_progress"),
          ("GpuAllocPreFix", "no_starvation"), ("GpuAllocPreFix", "rollouts_complete"),
          ("GpuAllocPostFix", "request_granted"), ("GpuAllocHooksWiredTwoRollouts", "no_starvation"),
          ("GpuAllocHooksWiredTwoRollouts", "rollouts_complete"), ("GpuAllocPostFixTwoRollouts", "no_starvation"),
          ("GpuAllocPostFixTwoRollouts", "rollouts_complete")}


@cache
def machines() -> dict[str, ir.Machine]:
    return {m.name: m for f in sorted(PROTOCOLS.glob("*.rf")) for m in load_file(f).machines}


@cache
def checker(name: str) -> MachineChecker:
    return MachineChecker(machines()[name], Options())


def test_every_variant_is_pinned() -> None:
    assert set(machines()) == set(STATE_COUNTS)


@pytest.mark.parametrize("name", sorted(STATE_COUNTS))
def test_state_count(name: str) -> None:
    graph = checker(name).graph()
    assert (graph.size if graph is not None else None) == STATE_COUNTS[name]


@pytest.mark.parametrize("cell", sorted(CELLS), ids=lambda c: f"{c[0]}.{c[1]}")
def test_counterexample_is_the_briefs_bug(cell: tuple[str, str]) -> None:
    name, prop = cell
    trace_id, brief_len, actions = CELLS[cell]
    res = checker(name).check(prop)
    assert res.verdict == "violated" and res.replayed, trace_id
    # gpu_alloc's planner moves one GPU per step (`move`); the brief counts a plan as one step
    steps = [st.action for st in res.trace[1:] if st.action != "move"]
    assert len(steps) <= brief_len, f"{trace_id}: {len(steps)} steps, the brief needs {brief_len}"
    holds = checker(name).interp.invariants.get(prop) or checker(name).interp.deadlock_free
    assert all(holds(st.state) for st in res.trace[:-1]) and not holds(res.trace[-1].state)
    if actions is not None:
        assert [st.action for st in res.trace[1:]] == actions, trace_id


@pytest.mark.parametrize("cell", sorted(LASSOS), ids=lambda c: f"{c[0]}.{c[1]}")
def test_liveness_violations_are_replayed_lassos(cell: tuple[str, str]) -> None:
    res = checker(cell[0]).check(cell[1])
    assert res.verdict == "violated" and res.replayed and res.loop_start is not None


def test_every_expectation_of_every_variant_is_covered() -> None:
    violated = {(m.name, p) for m in machines().values() for p in m.property_names if m.expected(p) == "violated"}
    # async_bound's T2 and the resume variants' shared cells are the same trace in each variant
    uncovered = {c for c in violated - set(CELLS) - LASSOS if c[1] not in ("async_bound", "deadlock_free")}
    assert uncovered <= {("CkptPostFixResumePrune", "no_torn_read"), ("CkptPostFixResumePrune", "loaded_marker_sound")}


@pytest.mark.parametrize("name", ["SlotRingFenced", "GpuAllocFenced", "CkptFenced"])
def test_fenced_variants_hold_everything_unbounded(name: str) -> None:
    for res in checker(name).check_all():
        assert res.verdict == "holds" and res.bound is None, (res.prop, res.verdict)


@pytest.mark.parametrize("consts", [{"A": 2, "I": 0}, {"A": 1, "I": 3}, {"A": 1, "I": 2, "M": 3}])
def test_fenced_ckpt_safety_is_proven_at_other_run_sizes(consts: dict[str, int]) -> None:
    """The ckpt runtime builds the fenced machine at the run's own A, I and readers M (never at its
    length: steps are a window): the same lemmas prove its safety there."""
    m = load_instance(PROTOCOLS / "ckpt_retention.rf", "CkptFenced", consts)
    checker = MachineChecker(m, Options())
    for prop in checker.safety_props():
        res = checker.check(prop)
        assert res.verdict == "holds" and res.method == "proof", (prop, res.method, res.detail)


@pytest.mark.slow
def test_fenced_ckpt_liveness_with_two_readers() -> None:
    """Liveness with two readers that die, fail, flap between eviction and joining: a load always
    ends and the trainer is always fed unless another failure comes first (2,264,466 states: past
    `racefree check`'s default state graph)."""
    m = load_instance(PROTOCOLS / "ckpt_retention.rf", "CkptFenced", {"M": 2})
    checker = MachineChecker(m, Options(graph_states=3_000_000))
    for prop in ("loads_complete", "trainer_fed", "cleanup_progress"):
        res = checker.check(prop)
        assert res.verdict == "holds" and res.bound is None, (prop, res.verdict, res.detail)


@pytest.mark.slow
def test_fenced_slot_ring_at_two_slots() -> None:
    """The fenced ring beyond its default instance (N = 1): two slots, every property, liveness
    included, on its 75,925 reachable states (the fast engine makes this a few seconds)."""
    m = load_instance(PROTOCOLS / "slot_ring.rf", "SlotRingFenced", {"N": 2})
    checker = MachineChecker(m, Options())
    results = checker.check_all()
    assert [r.prop for r in results] == m.property_names
    for res in results:
        assert res.verdict == "holds", (res.prop, res.verdict, res.detail)
    graph = checker.graph()
    assert graph is not None and graph.size == 75_925



def test_a_starvation_that_ends_in_a_deadlock_needs_no_state_graph() -> None:
    """Past the state graph's size (forced here with graph_states=100, of 256), a liveness
    violation whose run ends in a deadlock is still found: the fast engine's search for the first
    deadlock (the states without edges, which go WIDE_FACTOR times further than the graph), then
    the path plus a stutter loop, replayed as a fair lasso. Trace A's lasso is exactly that (P2
    finishes, P1 waits in gen forever), so the lasso has the graph's length; request_granted's
    obligation is met on the way to that deadlock, so it gets no such lasso."""
    m = _machine(load_file(PROTOCOLS / "gpu_alloc.rf"), "GpuAllocPreFix")
    checker = MachineChecker(m, Options(graph_states=100))
    res = checker.check("no_starvation")
    assert res.verdict == "violated" and res.method == "lasso" and res.replayed and res.bound == 35
    assert "deadlock" in res.detail and res.trace[-1].action == STUTTER and res.loop_start == res.bound - 1
    assert checker._graph is None  # the graph was not built
    assert checker._deadlock_lasso(m.live("request_granted")) is None


def test_a_starvation_too_deep_for_breadth_first_search_is_found_depth_first() -> None:
    """When the breadth-first search for the first deadlock cannot finish (forced here with
    max_states=10), a depth-first search looks for a deadlock; an instance's obligation is pending
    there, so its run (not necessarily the shortest) plus a stutter loop is replayed as a fair
    lasso, the same on every run. request_granted's obligation is met on the way to it: no lasso."""
    m = _machine(load_file(PROTOCOLS / "gpu_alloc.rf"), "GpuAllocPreFix")
    opt = Options(graph_states=10, max_states=10)
    checker = MachineChecker(m, opt)
    res = checker.check("no_starvation")
    assert (res.verdict, res.method, res.replayed) == ("violated", "lasso", True)
    assert "depth-first" in res.detail and res.trace[-1].action == STUTTER and res.loop_start == res.bound - 1
    assert res.bound >= 35  # trace A's lasso is the shortest
    assert MachineChecker(m, opt).check("no_starvation").trace == res.trace
    assert checker._deadlock_lasso(m.live("request_granted")) is None


def test_past_the_state_graph_safety_is_settled_from_the_states_alone() -> None:
    """hooks_wired (65,038 states) with the state graph limited to 10,000 states: the states
    without edges (8 times as many may be searched) still settle every safety property, with
    the verdicts and shortest traces of the graph."""
    m = _machine(load_file(PROTOCOLS / "gpu_alloc.rf"), "GpuAllocHooksWired")
    small, full = MachineChecker(m, Options(graph_states=10_000)), MachineChecker(m, Options())
    for name in ["no_empty_dispatch", *(i.name for i in m.invariants if i.name != "no_empty_dispatch"),
                 ir.DEADLOCK_FREE]:
        got, want = small.check(name), full.check(name)
        assert (got.verdict, got.method, got.bound) == (want.verdict, "explicit", want.bound), name
        assert got.trace == want.trace, name
    assert small._graph is None and small.wide() is not None and small.wide().size == STATE_COUNTS[m.name]


FENCED = [("slot_ring.rf", "SlotRingFenced"), ("slot_ring.rf", "SlotRingFencedLeaseReaper"),
          ("gpu_alloc.rf", "GpuAllocFenced"), ("ckpt_retention.rf", "CkptFenced")]


def _machine(f: ir.SpecFile, name: str) -> ir.Machine:
    return next(m for m in f.machines if m.name == name)


@pytest.mark.parametrize("spec, machine", FENCED)
def test_every_safety_property_of_a_fenced_variant_is_proven(spec: str, machine: str) -> None:
    """Item 4 of issue 15: with the brief's auxiliary invariants stated as lemma_* invariants,
    every safety property of every fenced design is an unbounded proof whose certificate (the
    lemmas) re-checked, not an enumeration of one instance. deadlock_free too."""
    m = _machine(load_file(PROTOCOLS / spec), machine)
    checker = MachineChecker(m, Options())
    for prop in checker.safety_props():
        res = checker.check(prop)
        assert res.verdict == "holds" and res.method == "proof" and res.bound is None, (prop, res.method, res.detail)
        assert res.certificate and "Houdini" in res.detail
    assert checker._graph is False  # no state graph was needed for any of them


@pytest.mark.parametrize("consts", [{"N": 2, "G": 3, "H": 3}, {"N": 3, "G": 3, "H": 3, "C": 3}])
def test_fenced_slot_ring_proofs_hold_beyond_what_enumeration_reaches(consts: dict[str, int]) -> None:
    """The lemmas are not tuned to one instance: the same text proves the fenced ring's safety at
    larger sizes (the lease reaper's weakened guard included)."""
    m = load_instance(PROTOCOLS / "slot_ring.rf", "SlotRingFencedLeaseReaper", consts)
    checker = MachineChecker(m, Options())
    for prop in ["single_owner_finalise", "no_torn_delivery", "at_most_once", "no_silent_loss", ir.DEADLOCK_FREE]:
        res = checker.check(prop)
        assert res.verdict == "holds" and res.method == "proof", (prop, res.method, res.detail)


def test_a_missing_lemma_costs_the_proof() -> None:
    """The proofs rest on the lemmas (no test that cannot fail): without unique grant tokens, an
    orphan's compare-and-set is not known to fail, so single_owner_finalise is no longer implied by
    an inductive set and the engine falls back to enumerating the instance."""
    text = (PROTOCOLS / "slot_ring.rf").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("  invariant lemma_tokens_unique:"))
    m = _machine(load_text(text.replace(line, ""), str(PROTOCOLS / "slot_ring.rf")), "SlotRingFenced")
    res = MachineChecker(m, Options()).check("single_owner_finalise")
    assert res.verdict == "holds" and res.method != "proof", res.detail


def _stale_clears(steps: list[tuple[str, tuple]], after: str) -> list[int]:
    """Where a clear of rollout 0 is delivered after ``after`` of the same pipeline's rollout 1
    (its begin report; or its signal, the first one after its first release): the reordering of
    traces B' and W3."""
    def began(p: int, upto: int) -> bool:
        if after == "deliver_begin":
            return ("deliver_begin", (p, 1)) in steps[:upto]
        first_release = steps.index(("release", (p,))) if ("release", (p,)) in steps[:upto] else upto
        return ("signal", (p,)) in steps[first_release:upto]
    return [i for i, (a, args) in enumerate(steps) if a == "deliver_clear" and args[1] == 0 and began(args[0], i)]


# The two-rollout machines start where the brief's traces B' and W3 do (S_A, S_post), one
# `start` step from the cold start's defaults: (machine, start action, the variant it runs).
TWO_ROLLOUTS = [("GpuAllocHooksWiredTwoRollouts", "start_at_s_a", "GpuAllocHooksWired"),
                ("GpuAllocPostFixTwoRollouts", "start_at_s_post", "GpuAllocPostFix")]


@pytest.mark.parametrize(("name", "start", "variant"), TWO_ROLLOUTS)
def test_the_two_rollout_start_states_are_reached_from_the_cold_start(name: str, start: str, variant: str) -> None:
    """The start step sets the state the init phase leaves: the variant itself, at R = 2 from its
    cold start, reaches exactly that state (every variable but the machine's own `started`)."""
    interp = Interpreter(machines()[name])
    [(action, _, first)] = [(a, args, st) for a, ca in interp.actions.items() for args, st in ca.successors(interp.init)]
    assert action == start
    names = [v.name for v in machines()[name].vars]
    variant_m = load_instance(PROTOCOLS / "gpu_alloc.rf", variant, {"R": 2})
    target = tuple(first[names.index(v.name)] for v in variant_m.vars)
    found = explore(Interpreter(variant_m), {"elsewhere": lambda st: st != target}, max_states=10_000)
    trace = found.violations["elsewhere"]
    assert trace[-1].state == target
    assert {st.action for st in trace[1:]} <= {*INIT, "move"}  # the init phase, no rollout yet


def test_trace_b_prime_from_s_a() -> None:
    """hooks_wired at R = 2 from S_A: the brief's trace B'. A clear of rollout 0 delivered after
    the begin report of rollout 1 erases the pipeline's progress; nothing is queued for it, so
    the planner never sees it again and the run stops with the pipeline starved. Past the state
    graph's size, so the lasso is the first deadlock of the breadth-first search (the shortest
    such run) plus a stutter loop there, replayed."""
    res = checker("GpuAllocHooksWiredTwoRollouts").check("no_starvation")
    assert res.verdict == "violated" and res.method == "lasso" and res.replayed and res.trace
    assert "breadth-first" in res.detail, res.detail
    steps = [(s.action, s.args) for s in res.trace]
    assert _stale_clears(steps, "deliver_begin"), steps
    _assert_starved_for_good("GpuAllocHooksWiredTwoRollouts", res.trace[-1].state)


def test_trace_w3_from_s_post() -> None:
    """post_fix at R = 2 from S_post: a stale clear (W3). The clear of rollout 0 is delivered after
    the pipeline's rollout-1 signal and erases rollout_open_pipelines; the signal times out
    (W1), the rollout is dispatched with no rank, and the planner never sees the pipeline
    again. Too many states for the breadth-first search to reach the run: the depth-first
    search for a deadlock finds it (not the shortest), and the obligation is pending there."""
    res = checker("GpuAllocPostFixTwoRollouts").check("no_starvation")
    assert res.verdict == "violated" and res.method == "lasso" and res.replayed and res.trace
    assert "depth-first" in res.detail, res.detail
    steps = [(s.action, s.args) for s in res.trace]
    assert _stale_clears(steps, "signal"), steps
    assert "timeout" in [a for a, _ in steps]  # W3 through W1's timeout (docs/protocols.md)
    _assert_starved_for_good("GpuAllocPostFixTwoRollouts", res.trace[-1].state)


def _assert_starved_for_good(name: str, end: tuple) -> None:
    """The run ends (nothing is enabled) with a pipeline dispatched and rankless."""
    m = machines()[name]
    names = [v.name for v in m.vars]
    pc, ranks = names.index("pc"), names.index("ranks")
    genr = m.vars[pc].ty.value.members.index("GENR")  # type: ignore[union-attr]
    assert any(end[pc][q] == genr and not end[ranks][q] for q in range(2)), end
    assert not checker(name).interp.deadlock_free(end)


@pytest.mark.slow
def test_the_endless_fenced_scheduler_is_proven_for_runs_of_any_length() -> None:
    """GpuAllocFencedEndless, the machine the scheduler runtime runs: rollouts numbered in a window
    of two, `slide` and `finish`. Every invariant and deadlock_free is a Houdini proof from the
    fenced lemmas, inductive with slide and finish, so it holds after any number of slides: for
    runs of any length. Liveness on its whole state graph (3,223,961 states; `racefree check`'s
    default graph is smaller, which is why the file is not among the bundled protocols)."""
    m = load_instance(PROTOCOLS / "endless" / "gpu_alloc_endless.rf", "GpuAllocFencedEndless", {})
    checker = MachineChecker(m, Options(graph_states=4_000_000))
    for name in [i.name for i in m.invariants] + ["deadlock_free"]:
        res = checker.check(name)
        assert (res.verdict, res.method) == ("holds", "proof"), (name, res.detail)
    for name in ("no_starvation", "request_granted", "rollouts_complete"):
        res = checker.check(name)
        assert res.verdict == "holds" and res.bound is None, (name, res.detail)


def test_fenced_ckpt_properties_have_teeth(tmp_path: Path) -> None:
    """Teeth for the window and the leases: a slide that does not wait for its bottom step to be
    retired drops a live step (the runtime would never delete it); without the fair expiry of a
    dead reader's lease, one dead reader stalls every load."""
    text = (PROTOCOLS / "ckpt_retention.rf").read_text()

    def variant(old: str, new: str) -> ir.Machine:
        assert old in text
        spec = tmp_path / "ckpt_retention.rf"
        spec.write_text(text.replace(old, new))
        return _machine(load_file(spec), "CkptFenced")

    m = variant("and trash == {} and not (0 in present and not kept(0))", "and trash == {}")
    res = MachineChecker(m, Options()).check("window_sound")
    assert res.verdict == "violated" and res.replayed and res.trace[-1].action == "slide"
    m = variant("  fair expire\n", "")
    res = MachineChecker(m, Options()).check("loads_complete")
    assert res.verdict == "violated" and "die" in [s.action for s in res.trace], res.detail


# The brief's named pre_fix scenarios (slot_ring.md §6), step for step: they need four handler
# records and three payloads, past the bundled instance. (action, args) per step.
OLD_A = [  # C fans r1 out to Ha, Hb; Hb stalls; the retry's Hc frees the slot under chunk 1; Hd serves P2's half
    ("write", (2,)), ("claim", (0, 1)), ("issue_fanout", (0, 0, 1)), ("accept", (0, False)), ("accept", (1, False)),
    ("send_start", (0, False)), ("send_end", (0,)), ("timeout", (0,)), ("issue_fanout", (0, 2, 3)),
    ("accept", (2, False)), ("send_start", (2, False)), ("send_end", (2,)), ("finalise", (2,)),
    ("write", (2,)), ("accept", (3, False)), ("send_start", (3, False)), ("send_end", (3,)),
    ("recv", (0,)),  # P1's head + P2's tail accepted as r1
    ("fail", (1, False)), ("finalise", (1,)),  # Hb wakes and fails: READY again, P2 served again
]
OLD_B = [  # Ha opens P1 and stalls; Hb re-enters and frees it; Ha's late completion frees C2's P2 period
    ("write", (1,)), ("claim", (0, 1)), ("issue", (0, 0)), ("accept", (0, False)), ("send_start", (0, False)),
    ("timeout", (0,)), ("issue", (0, 1)), ("accept", (1, False)), ("send_start", (1, False)), ("send_end", (1,)),
    ("finalise", (1,)), ("recv", (0,)),
    ("write", (2,)), ("claim", (1, 2)), ("issue_fanout", (1, 2, 3)), ("accept", (2, False)),
    ("send_start", (2, False)), ("send_end", (2,)),
    ("send_end", (0,)), ("finalise", (0,)),  # Ha's late completion: rc to 0, FREE under C2
    ("write", (1,)), ("accept", (3, False)), ("send_start", (3, False)), ("send_end", (3,)),
    ("recv", (1,)),  # P2 | P3 accepted as r2
]


@pytest.mark.parametrize(("name", "steps", "breaks"), [
    ("OLD-A", OLD_A, {"single_owner_finalise": 13, "no_torn_delivery": 18}),
    ("OLD-B", OLD_B, {"single_owner_finalise": 11, "no_torn_delivery": 25}),
])
def test_old_a_and_old_b_replay_step_by_step(name: str, steps: list[tuple[str, tuple[object, ...]]],
                                            breaks: dict[str, int]) -> None:
    from racefree.spec.interp import Interpreter

    interp = Interpreter(load_instance(PROTOCOLS / "slot_ring.rf", "SlotRingPreFix", {"H": 4, "G": 3}))
    state, first = interp.init, {}
    for i, (action, args) in enumerate(steps, 1):
        nxt = interp.step(state, action, args)
        assert nxt is not None, f"{name} step {i}: {action}{args} is not enabled"
        state = nxt
        for prop, holds in interp.invariants.items():
            if not holds(state):
                first.setdefault(prop, i)
    assert {p: first[p] for p in breaks} == breaks, first

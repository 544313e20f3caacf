"""A machine's control states, for docs and for the `transitions` ecosystem.

The reachable state graph (explicit enumeration of the default instance) is
projected onto a few *cells* - by default the enum-valued scalar variables, or
else the first cell of the first enum-valued map (``pc[0]``). Each projected
value is a control state; an action that changes it is an edge labelled with
the action's name. Steps that leave the projection unchanged are left out.

The projection is an abstraction: one (state, action) may lead to several
control states depending on cells not shown. ``to_transitions`` hands the same
graph to ``transitions.Machine(**config)``, whose conditions are then the
user's to add; it is interop and documentation, not the runtime
(``racefree gen`` is).
"""

from __future__ import annotations

from dataclasses import dataclass

from racefree.spec import ir, values
from racefree.spec.interp import Interpreter
from racefree.spec.ir import TEnum, TMap
from racefree.verification.explicit import state_graph

from .machine import GenError


@dataclass(frozen=True)
class ControlGraph:
    machine: str
    cells: tuple[str, ...]
    initial: str
    states: tuple[str, ...]
    edges: tuple[tuple[str, str, str], ...]  # (source, action, destination)


def default_cells(m: ir.Machine) -> list[str]:
    scalars = [v.name for v in m.vars if isinstance(v.ty, TEnum)]
    if scalars:
        return scalars
    for v in m.vars:
        if isinstance(v.ty, TMap) and isinstance(v.ty.value, TEnum):
            return [values.cells(v, (0,) * len(ir.domain(v.ty.key)))[0][0]]
    raise GenError(f"{m.name} has no enum-valued variable to draw; name cells with --cell")


def control_graph(m: ir.Machine, cells: list[str] | None = None, max_states: int = 200_000) -> ControlGraph:
    chosen = cells or default_cells(m)
    interp = Interpreter(m)
    graph = state_graph(interp, max_states, stutter="deadlock")
    if graph is None:
        raise GenError(f"{m.name} has more than {max_states:,} reachable states: too many to draw")

    def label(state: values.State) -> str:
        shown = dict(c for var, v in zip(m.vars, state, strict=True) for c in values.cells(var, v))
        missing = [c for c in chosen if c not in shown]
        if missing:
            raise GenError(f"{m.name} has no cell {missing[0]}; cells: {', '.join(shown)}")
        return ", ".join(shown[c] if len(chosen) == 1 else f"{c}={shown[c]}" for c in chosen)

    labels = [label(st) for st in graph.states]
    edges = sorted({(labels[i], name, labels[j]) for i, out in enumerate(graph.edges) for name, _, j in out
                    if labels[i] != labels[j]})
    return ControlGraph(m.name, tuple(chosen), labels[0], tuple(dict.fromkeys(sorted(labels))), tuple(edges))


def mermaid(g: ControlGraph) -> str:
    ids = {s: f"s{i}" for i, s in enumerate(g.states)}
    lines = ["stateDiagram-v2", f"    %% {g.machine}: control states over {', '.join(g.cells)}"]
    lines += [f'    state "{s}" as {ids[s]}' for s in g.states]
    lines.append(f"    [*] --> {ids[g.initial]}")
    lines += [f"    {ids[a]} --> {ids[b]}: {action}" for a, action, b in g.edges]
    return "\n".join(lines) + "\n"


def to_transitions(g: ControlGraph) -> dict[str, object]:
    """Keyword arguments for ``transitions.Machine``: states, initial state and transitions."""
    return {"states": list(g.states), "initial": g.initial, "auto_transitions": False,
            "transitions": [{"trigger": action, "source": a, "dest": b} for a, action, b in g.edges]}

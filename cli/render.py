"""Human output: result tables, counterexample trace tables, Mermaid sequence diagrams."""

from __future__ import annotations

from typing import Any

from racefree.spec import ir, values
from racefree.verification.diagnostics import Finding
from racefree.verification.result import STUTTER, Result, Step, trace_json


def _cells(m: ir.Machine, state: tuple[Any, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for var, v in zip(m.vars, state, strict=True):
        out.update(values.cells(var, v))
    return out


def _compress(m: ir.Machine, cells: dict[str, str]) -> list[str]:
    """Initial-state cells, with a map whose entries are all equal shown once as name[*]."""
    out = []
    for var in m.vars:
        mine = [(k, v) for k, v in cells.items() if k == var.name or k.startswith(var.name + "[")]
        if len(mine) > 1 and len({v for _, v in mine}) == 1:
            out.append(f"{var.name}[*] = {mine[0][1]}")
        else:
            out += [f"{k} = {v}" for k, v in mine]
    return out


def action_label(m: ir.Machine, step: Step) -> str:
    if step.action is None:
        return "(initial state)"
    if step.action == STUTTER:
        return "(stutter: stays put)"
    a = m.action(step.action)
    return f"{a.name}({values.show_args(a, step.args)})" if a.params else a.name


def changes(m: ir.Machine, trace: list[Step]) -> list[list[str]]:
    """Per step, the cells that changed (all cells, compressed, for the initial state)."""
    rows = []
    prev: dict[str, str] | None = None
    for st in trace:
        cur = _cells(m, st.state)
        if prev is None:
            rows.append(_compress(m, cur))
        else:
            rows.append([f"{k} = {v}" for k, v in cur.items() if prev.get(k) != v])
        prev = cur
    return rows


def _role(m: ir.Machine, step: Step) -> str:
    return m.action(step.action).role if step.action and step.action != STUTTER else "-"


def trace_table(r: Result) -> str:
    """One row per step, only changed cells; a lasso's loop is marked with '|' and its start with '*'."""
    assert r.trace is not None
    m = r.machine
    loop = r.loop_start
    rows = [("step", "role", "action", "changes")]
    for i, (st, ch) in enumerate(zip(r.trace, changes(m, r.trace), strict=True)):
        mark = "" if loop is None else "*" if i == loop else "|" if i > loop else ""
        rows.append((f"{i}{mark}", _role(m, st), action_label(m, st), ", ".join(ch) or "(no change)"))
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    lines = ["  " + "  ".join(row[c].ljust(widths[c]) for c in range(3)) + "  " + row[3] for row in rows]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    replayed = " (replayed through the interpreter)" if r.replayed else ""
    if loop is None:
        lines.append(f"  -> '{r.prop}' is violated after step {len(r.trace) - 1}{replayed}")
    else:
        lines.append(f"  -> step {len(r.trace) - 1} is the state of step {loop}*: the steps marked | repeat "
                     f"forever, fairly, and '{r.prop}' is never met{replayed}")
    return "\n".join(lines)


def mermaid(r: Result) -> str:
    """The counterexample as a Mermaid sequenceDiagram whose lanes are the roles, plus the shared state."""
    assert r.trace is not None
    m = r.machine
    what = "violated" if r.loop_start is None else "never met (lasso)"
    lines = ["sequenceDiagram", f"    title {m.name}: {r.prop} {what} in {len(r.trace) - 1} steps"]
    for role in m.roles:
        lines.append(f"    participant {role}")
    lines.append("    participant state as shared state")
    ch = changes(m, r.trace)
    lines.append(f"    Note over state: {'<br/>'.join(ch[0])}")
    for i, st in enumerate(r.trace[1:], start=1):
        if r.loop_start is not None and i == r.loop_start + 1:
            lines.append("    loop forever (fair)")
        role = _role(m, st)
        lines.append(f"    {role if role != '-' else 'state'}->>state: {i}. {action_label(m, st)}")
        if ch[i]:
            lines.append(f"    Note right of state: {'<br/>'.join(ch[i])}")
    if r.loop_start is not None:
        lines.append("    end")
    lines.append(f"    Note over state: {r.prop} {what}")
    return "\n".join(lines) + "\n"


def results_table(results: list[tuple[str, Result]]) -> str:
    head = ("file", "machine", "property", "verdict", "expected", "method", "bound", "seconds")
    rows = [head]
    for path, r in results:
        expected = r.expected or "holds"
        mark = "ok" if r.matches else "MISMATCH"
        rows.append((path, r.machine.name, r.prop, r.verdict, f"{expected} ({mark})", r.method,
                     str(r.bound) if r.bound is not None else "unbounded" if r.verdict == "holds" else "-",
                     f"{r.seconds:.2f}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    out = ["  ".join(row[c].ljust(widths[c]) for c in range(len(head))).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def result_json(path: str, r: Result) -> dict[str, Any]:
    return {
        "file": path, "machine": r.machine.name, "property": r.prop, "kind": r.kind,
        "verdict": r.verdict, "method": r.method, "bound": r.bound, "seconds": round(r.seconds, 4),
        "expected": r.expected, "trace": r.trace_json(), "certificate": r.certificate, "states": r.states,
        "replayed": r.replayed if r.trace is not None else None, "detail": r.detail,
        "loop_start": r.loop_start,
    }


def diagnostic_line(path: str, m: ir.Machine, f: Finding) -> str:
    line = f"{path}: {m.name}: {f.message}"
    if f.example is not None:
        line += f"; first in: {', '.join(_compress(m, _cells(m, f.example[-1].state)))} (after {len(f.example) - 1} steps)"
    return line


def diagnostic_json(path: str, m: ir.Machine, f: Finding) -> dict[str, Any]:
    return {"file": path, "machine": m.name, "kind": "diagnostic", "diagnostic": f.kind, "subject": f.subject,
            "detail": f.message, "trace": None if f.example is None else trace_json(m, f.example)}


def _event(m: ir.Machine, files: list[str], ev: Any) -> str:
    _t, fi, line, seq, action, args, pid = ev
    a = m.action(action)
    call = f"{a.role}.{action}({values.show_args(a, args)})"
    return f"{files[fi]}:{line}: seq {seq}, pid {pid}: {call}"


def replay_report(r: Any, files: list[str]) -> str:
    """What ``racefree replay`` found: conformance, or the first refused event / broken invariant."""
    m = r.machine
    if r.outcome == "ok":
        return f"{m.name}: every event is a step of the spec and no invariant is violated"
    lines = []
    if r.failing is None:
        return f"{m.name}: invariant {r.prop} is false in the initial state"
    if r.before:
        lines.append(f"the {len(r.before)} events before it:")
        lines += [f"  {_event(m, files, ev)}" for ev in r.before]
    if r.outcome == "not_enabled":
        why = f"requires {r.failing_conjunct}" if r.failing_conjunct else \
            "a map key or an assigned value would leave its declared type"
        lines.append(f"event {r.events} is not enabled in {m.name} ({why}):")
    else:
        lines.append(f"after event {r.events}, invariant {r.prop} of {m.name} is violated:")
    lines.append(f"  {_event(m, files, r.failing)}")
    shown = _compress(m, _cells(m, r.state))
    lines.append(("state before it: " if r.outcome == "not_enabled" else "state after it: ") + ", ".join(shown))
    return "\n".join(lines)

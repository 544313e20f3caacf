"""Merge ``machine B extends A`` into one complete machine.

A variant is a diff: it inherits every declaration of its base and may
``override`` a const, def, var, action, invariant, liveness property or terminal,
``drop`` an action, fairness, invariant, liveness property or terminal (an inherited
``expect`` or ``fair`` goes with what it names), add new
declarations, or restate an ``expect`` (a child's expect replaces the base's).
An ``override`` of something the base lacks is RF013; a plain declaration of
something the base already has is RF011 with a hint to use ``override``.
"""

from __future__ import annotations

from dataclasses import replace

from . import errors, ir, macros
from .parser import Member, RawMachine


def _key(m: Member) -> tuple[str, str]:
    if m.kind == "expect":
        return ("expect", m.node.prop)
    if m.kind == "fair":
        return ("fair", m.node.action)
    return (m.kind, m.node.name)


def merge(raw: list[RawMachine]) -> list[ir.Machine]:
    """Complete each machine in file order; a base must come before its variants."""
    done: dict[str, list[Member]] = {}
    out: list[ir.Machine] = []
    for rm in raw:
        if rm.name in done:
            first = next(m for m in out if m.name == rm.name)
            raise errors.duplicate(rm.loc, rm.name, "machine", first.loc)
        members = _members(rm, done)
        done[rm.name] = members
        out.append(_build(rm, members))
    return out


def _members(rm: RawMachine, done: dict[str, list[Member]]) -> list[Member]:
    own: dict[tuple[str, str], Member] = {}
    for m in rm.members:
        if m.kind == "drop":
            continue
        k = _key(m)
        if k in own:
            if m.kind == "expect":
                raise errors.duplicate_expect(m.node.loc, m.node.prop, own[k].node.loc)
            raise errors.duplicate(m.node.loc, k[1], m.kind, own[k].node.loc)
        own[k] = m
    if rm.base is None:
        for m in own.values():
            if m.override:
                raise errors.bad_override(m.node.loc, m.node.name, m.kind, "(no base machine)")
        return list(own.values())
    if rm.base not in done:
        raise errors.unknown_base(rm.loc, rm.base)
    inherited = {_key(m): m for m in done[rm.base]}
    for m in rm.members:
        if m.kind == "drop":
            kind, name, loc = m.node
            if (kind, name) not in inherited:
                raise errors.bad_override(loc, name, kind, rm.base)
            del inherited[(kind, name)]
            if kind in ("invariant", "liveness"):
                inherited.pop(("expect", name), None)  # the expectation goes with its property
            if kind == "action":
                inherited.pop(("fair", name), None)  # and fairness with its action
    result = dict(inherited)
    for k, m in own.items():
        if m.kind == "expect":
            result[k] = m
        elif m.override:
            if k not in inherited:
                raise errors.bad_override(m.node.loc, m.node.name, m.kind, rm.base)
            node = m.node
            if m.kind == "action" and node.role == "system":
                node = replace(node, role=inherited[k].node.role)  # keep the base's lane
            result[k] = Member(m.kind, node)
        elif k in inherited:
            raise errors.duplicate(m.node.loc, k[1], m.kind, inherited[k].node.loc,
                                   hint=f"write 'override {m.kind} {k[1]}' to replace the base's")
        else:
            result[k] = m
    return list(result.values())


def _build(rm: RawMachine, members: list[Member]) -> ir.Machine:
    def of(kind: str) -> tuple:
        return tuple(m.node for m in members if m.kind == kind)

    defs: dict[str, ir.Def] = {d.name: d for d in of("def")}
    names = {x.name: x.loc for kind in ("const", "var", "type", "enum") for x in of(kind)}
    for d in defs.values():
        if d.name in names:
            raise errors.duplicate(d.loc, d.name, "name", names[d.name])

    def ex(kind: str) -> tuple:
        return tuple(macros.expand(x, defs) for x in of(kind)) if defs else of(kind)

    return ir.Machine(
        name=rm.name, doc=rm.doc, consts=of("const"), enums=of("enum"), types=of("type"),
        vars=ex("var"), actions=ex("action"), invariants=ex("invariant"), expects=of("expect"),
        liveness=ex("liveness"), fairness=of("fair"), terminals=ex("terminal"), loc=rm.loc, base=rm.base,
        strict_bounds=bool(of("strict")),
    )


"""``def`` and ``let``: named expressions, expanded syntactically before type checking.

``def kept(v) = I > 0 and v % I == 0`` declares a machine-level name; ``kept(x)``
(or a bare ``name`` for a def without parameters) is replaced by the body with the
arguments substituted. ``let F = expr`` inside an action names an expression for the
rest of that action. Expansion is exact because every right-hand side reads the
state before the action, so a named expression means the same wherever it is used.
A name bound by a quantifier, comprehension or action parameter shadows a def.
The type checker and every engine only ever see the expanded machine, and ``show``
prints it expanded.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

from . import errors, ir


def substitute(node: Any, mapping: dict[str, ir.Expr]) -> Any:
    """``node`` with every free ``Name`` in ``mapping`` replaced (binders shadow)."""
    return _walk(node, lambda e, bound: mapping[e.id] if isinstance(e, ir.Name) and e.id in mapping
                 and e.id not in bound else None, frozenset())


def expand(node: Any, defs: dict[str, ir.Def], shadowed: frozenset[str] = frozenset()) -> Any:
    """``node`` with every use of a def replaced by its expanded body."""
    return _expand(node, defs, shadowed, ())


def _expand(node: Any, defs: dict[str, ir.Def], shadowed: frozenset[str], active: tuple[str, ...]) -> Any:
    def visit(e: Any, bound: frozenset[str]) -> Any:
        if isinstance(e, ir.MacroCall):
            d = defs.get(e.name)
            if d is None:
                raise errors.unknown_name(e.loc, e.name, "definition", sorted(defs))
            if len(d.params) != len(e.args):
                raise errors.arity(e.loc, e.name, len(d.params), len(e.args))
            args = tuple(_expand(a, defs, bound, active) for a in e.args)
            return _use(d, args, e.loc)
        if isinstance(e, ir.Name) and e.id in defs and e.id not in bound:
            d = defs[e.id]
            if d.params:
                raise errors.arity(e.loc, e.id, len(d.params), 0)
            return _use(d, (), e.loc)
        return None

    def _use(d: ir.Def, args: tuple[ir.Expr, ...], loc: errors.Loc) -> ir.Expr:
        if d.name in active:
            raise errors.cyclic_definition(loc, d.name)
        body = _expand(d.body, defs, frozenset(d.params), active + (d.name,))
        return substitute(body, dict(zip(d.params, args, strict=True)))

    return _walk(node, visit, shadowed)


def _walk(node: Any, visit: Any, bound: frozenset[str]) -> Any:
    """Rebuild ``node`` bottom-up; ``visit(expr, bound)`` may return a replacement."""
    if isinstance(node, tuple):
        return tuple(_walk(x, visit, bound) for x in node)
    if not is_dataclass(node) or isinstance(node, type):
        return node
    hit = visit(node, bound)
    if hit is not None:
        return hit
    inner = bound
    match node:
        case ir.Quant(binders=bs):
            inner = bound | {b.name for b in bs}
        case ir.SetComp(binder=b):
            inner = bound | {b.name}
        case ir.Action(params=ps):
            inner = bound | {p.name for p in ps}
        case ir.Liveness(binders=bs):
            inner = bound | {b.name for b in bs}
    changes = {}
    for f in fields(node):
        if f.name in ("loc", "ty"):
            continue
        old = getattr(node, f.name)
        new = _walk(old, visit, inner)
        if new is not old:
            changes[f.name] = new
    return replace(node, **changes) if changes else node

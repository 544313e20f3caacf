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
from functools import cache
from typing import Any

from . import errors, ir


def substitute(node: Any, mapping: dict[str, ir.Expr]) -> Any:
    """``node`` with every free ``Name`` in ``mapping`` replaced (binders shadow)."""
    return _walk(node, lambda e, bound: mapping[e.id] if isinstance(e, ir.Name) and e.id in mapping
                 and e.id not in bound else None, frozenset())


def expand(node: Any, defs: dict[str, ir.Def], shadowed: frozenset[str] = frozenset()) -> Any:
    """``node`` with every use of a def replaced by its expanded body."""
    return _expand(node, defs, shadowed, ())


def _expand(node: Any, defs: dict[str, ir.Def], shadowed: frozenset[str], active: tuple[str, ...],
            done: dict[str, ir.Expr] | None = None) -> Any:
    # A def's expanded body is the same at every use (only the arguments differ): expand it once.
    # Only successful expansions are kept, so a cycle is still found at its first use.
    done = {} if done is None else done

    def visit(e: Any, bound: frozenset[str]) -> Any:
        if isinstance(e, ir.MacroCall):
            d = defs.get(e.name)
            if d is None:
                raise errors.unknown_name(e.loc, e.name, "definition", sorted(defs))
            if len(d.params) != len(e.args):
                raise errors.arity(e.loc, e.name, len(d.params), len(e.args))
            args = tuple(_expand(a, defs, bound, active, done) for a in e.args)
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
        body = done.get(d.name)
        if body is None:
            body = done[d.name] = _expand(d.body, defs, frozenset(d.params), active + (d.name,), done)
        return substitute(body, dict(zip(d.params, args, strict=True))) if d.params else body

    return _walk(node, visit, shadowed)


def _walk(node: Any, visit: Any, bound: frozenset[str]) -> Any:
    """Rebuild ``node`` bottom-up; ``visit(expr, bound)`` may return a replacement."""
    if isinstance(node, tuple):
        return tuple(_walk(x, visit, bound) for x in node)
    names = _node_fields(type(node))
    if names is None:
        return node
    hit = visit(node, bound)
    if hit is not None:
        return hit
    inner = bound
    match node:
        case ir.Quant(binders=bs):
            inner = bound | {b.name for b in bs}
        case ir.SetComp(binder=b) | ir.For(binder=b):
            inner = bound | {b.name}
        case ir.Action(params=ps):
            inner = bound | {p.name for p in ps}
        case ir.Liveness(binders=bs):
            inner = bound | {b.name for b in bs}
    changes = {}
    for name in names:
        old = getattr(node, name)
        new = _walk(old, visit, inner)
        if new is not old:
            changes[name] = new
    return replace(node, **changes) if changes else node


@cache
def _node_fields(cls: type) -> tuple[str, ...] | None:
    """The fields of an IR node class that may hold nodes (None: not a node)."""
    if not is_dataclass(cls):
        return None
    return tuple(f.name for f in fields(cls) if f.name not in ("loc", "ty"))

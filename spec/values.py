"""The canonical encoding of state values, and how they are shown.

Every engine agrees on this encoding: bool -> bool, range -> int, enum -> member
index, option -> ``None`` or the value, set -> frozenset of encoded elements,
map -> tuple indexed by key position. A state is a tuple with one entry per
``var`` in declaration order.
"""

from __future__ import annotations

from typing import Any

from . import ir
from .ir import TBool, TEnum, TInt, TMap, TOption, TSet, Ty

State = tuple[Any, ...]


def key_position(key_ty: Ty, key: Any) -> int:
    if isinstance(key_ty, TInt):
        assert key_ty.lo is not None
        return int(key) - key_ty.lo
    return int(key)


def show_scalar(ty: Ty, v: Any) -> str:
    match ty:
        case TEnum(_, members):
            return members[v]
        case TBool():
            return "true" if v else "false"
        case TOption(base):
            return "none" if v is None else show_scalar(base, v)
        case TSet(elem):
            return "{" + ", ".join(show_scalar(elem, x) for x in sorted(v)) + "}"
    return str(v)


def cells(var: ir.Var, v: Any) -> list[tuple[str, str]]:
    """A variable's value as (cell name, shown value) pairs; a map gives one cell per key."""
    ty = var.ty
    assert ty is not None
    if isinstance(ty, TMap):
        return [(f"{var.name}[{show_scalar(ty.key, k)}]", show_scalar(ty.value, v[i]))
                for i, k in enumerate(ir.domain(ty.key))]
    return [(var.name, show_scalar(ty, v))]


def to_json(ty: Ty, v: Any) -> Any:
    match ty:
        case TMap(key, value):
            return {show_scalar(key, k): to_json(value, v[i]) for i, k in enumerate(ir.domain(key))}
        case TSet(elem):
            return [to_json(elem, x) for x in sorted(v)]
        case TEnum(_, members):
            return members[v]
        case TOption(base):
            return None if v is None else to_json(base, v)
    return v


def state_json(m: ir.Machine, st: State) -> dict[str, Any]:
    return {var.name: to_json(var.ty, v) for var, v in zip(m.vars, st, strict=True)}  # type: ignore[arg-type]


def show_args(a: ir.Action, args: tuple[Any, ...]) -> str:
    return ", ".join(f"{p.name}={show_scalar(p.ty, x)}" for p, x in zip(a.params, args, strict=True))  # type: ignore[arg-type]

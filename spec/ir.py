"""The one IR every consumer reads: frozen, slotted dataclasses with source locations.

Two layers live here:
- resolved types (``Ty``): what a value *is* (a bounded integer range, an enum,
  an option, a set, a map);
- syntax nodes (``Expr``, ``Stmt``, ``Action``, ``Machine`` ...), as parsed.
  The type checker returns the same nodes with ``ty`` filled in on every
  expression and names resolved (``Name.kind``).

Locations, inferred types and resolution kinds are excluded from equality so
that ``parse(show(m))`` compares equal to ``m``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from typing import Literal

from .errors import NOWHERE, Loc

# ----------------------------------------------------------------- resolved types


@dataclass(frozen=True, slots=True)
class TBool:
    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True, slots=True)
class TInt:
    """An integer interval; ``None`` bounds mean unbounded (only for constants and arithmetic)."""

    lo: int | None
    hi: int | None
    # The symmetric type whose values these are (``symmetric type Slot = 0..S-1``), else None.
    # Not part of equality: a symmetric type is still its interval everywhere else.
    sym: str | None = field(default=None, compare=False)

    @property
    def bounded(self) -> bool:
        return self.lo is not None and self.hi is not None

    def __str__(self) -> str:
        return f"{self.lo}..{self.hi}" if self.bounded else "int"


@dataclass(frozen=True, slots=True)
class TEnum:
    name: str
    members: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class TOption:
    base: Ty

    def __str__(self) -> str:
        return f"{self.base}?"


@dataclass(frozen=True, slots=True)
class TSet:
    elem: Ty

    def __str__(self) -> str:
        return f"set {self.elem}"


@dataclass(frozen=True, slots=True)
class TMap:
    key: Ty
    value: Ty

    def __str__(self) -> str:
        return f"{self.key} -> {self.value}"


@dataclass(frozen=True, slots=True)
class TEmptySet:
    """The type of ``{}`` before context says what it holds."""

    def __str__(self) -> str:
        return "set"


@dataclass(frozen=True, slots=True)
class TNone:
    """The type of the literal ``none`` before context says what it is optional of."""

    def __str__(self) -> str:
        return "none"


Ty = TBool | TInt | TEnum | TOption | TSet | TMap | TEmptySet | TNone


def domain(ty: Ty) -> tuple[int | bool, ...]:
    """The values of a finite scalar type, in their canonical encoding (enums as indices)."""
    match ty:
        case TBool():
            return (False, True)
        case TInt(lo, hi) if lo is not None and hi is not None:
            return tuple(range(lo, hi + 1))
        case TEnum(_, members):
            return tuple(range(len(members)))
    raise ValueError(f"no finite domain for {ty}")


def is_finite_scalar(ty: Ty) -> bool:
    return isinstance(ty, TBool | TEnum) or (isinstance(ty, TInt) and ty.bounded)


# ------------------------------------------------------------------ type syntax


@dataclass(frozen=True, slots=True)
class TypeName:
    name: str
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class BoolTypeExpr:
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class IntTypeExpr:
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class RangeTypeExpr:
    lo: Expr
    hi: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class OptionTypeExpr:
    base: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class SetTypeExpr:
    elem: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class MapTypeExpr:
    key: TypeExpr
    value: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)


TypeExpr = TypeName | BoolTypeExpr | IntTypeExpr | RangeTypeExpr | OptionTypeExpr | SetTypeExpr | MapTypeExpr

# ------------------------------------------------------------------ expressions

NameKind = Literal["var", "const", "param", "bound", "member", ""]


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NoneLit:
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)
    kind: NameKind = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Index:
    base: Expr
    index: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SetLit:
    elems: tuple[Expr, ...]
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Card:
    operand: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


UnaryOp = Literal["not", "-"]
BinaryOp = Literal[
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "implies",
    "in", "subset", "union", "inter", "minus", "??",
]


@dataclass(frozen=True, slots=True)
class Unary:
    op: UnaryOp
    operand: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Ite:
    cond: Expr
    then: Expr
    else_: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Binder:
    name: str
    type: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Quant:
    kind: Literal["forall", "exists"]
    binders: tuple[Binder, ...]
    body: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SetComp:
    """``{x: T | P}``: the elements of a finite type that satisfy a predicate."""

    binder: Binder
    cond: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MacroCall:
    """A use of a ``def`` with arguments; only exists until macros.expand replaces it."""

    name: str
    args: tuple[Expr, ...]
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Def:
    """``def name(params) = body``: a named expression, expanded at each use before type checking."""

    name: str
    params: tuple[str, ...]
    body: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    fn: Literal["min", "max"]
    args: tuple[Expr, ...]
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


Expr = IntLit | BoolLit | NoneLit | Name | Index | SetLit | SetComp | Card | Unary | Binary | Ite | Quant | Call | MacroCall

# ------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Assign:
    target: Name | Index
    value: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    else_: tuple[Stmt, ...]
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class For:
    """``for q: P do ... end``: the body once per value of ``q``'s type, all reading the
    pre-state. The type checker unrolls it, so the typed IR never holds one."""
    binder: Binder
    body: tuple[Stmt, ...]
    loc: Loc = field(default=NOWHERE, compare=False)


Stmt = Assign | If | For

# ------------------------------------------------------------------ declarations

Policy = Literal["raise", "ignore", "wait"]


@dataclass(frozen=True, slots=True)
class Const:
    name: str
    value: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class TypeDecl:
    name: str
    type: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)
    symmetric: bool = False  # its values are interchangeable (checked; used by symmetry reduction)


@dataclass(frozen=True, slots=True)
class EnumDecl:
    name: str
    members: tuple[str, ...]
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    type: TypeExpr
    init: Expr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: TypeExpr
    loc: Loc = field(default=NOWHERE, compare=False)
    ty: Ty | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    role: str
    params: tuple[Param, ...]
    requires: tuple[Expr, ...]
    body: tuple[Stmt, ...]
    policy: Policy = "raise"
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    expr: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Terminal:
    """States satisfying ``expr`` may have no enabled action without it being a deadlock."""

    name: str
    expr: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Fair:
    """Fairness on every ground instance of an action: weak (continuously enabled => taken) or strong."""

    action: str
    strong: bool = False
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class StrictBounds:
    """``strict_bounds``: an update or key out of its declared range is a violation of the built-in
    property ``in_bounds`` (with a trace), not a silently disabled action."""

    name: str = "in_bounds"
    loc: Loc = field(default=NOWHERE, compare=False)


TemporalKind = Literal["eventually", "always_eventually", "leads_to"]


@dataclass(frozen=True, slots=True)
class Liveness:
    """``[forall binders.] eventually goal | always eventually goal | trigger leads_to goal``."""

    name: str
    binders: tuple[Binder, ...]
    kind: TemporalKind
    trigger: Expr | None  # leads_to only
    goal: Expr
    loc: Loc = field(default=NOWHERE, compare=False)


DEADLOCK_FREE = "deadlock_free"  # the built-in property every machine has
IN_BOUNDS = "in_bounds"  # the built-in property of a machine with strict_bounds (or checked with --strict-bounds)

Verdict = Literal["holds", "violated"]


@dataclass(frozen=True, slots=True)
class Expect:
    prop: str
    verdict: Verdict
    loc: Loc = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Machine:
    """A complete machine: a variant's ``extends`` is already merged into it."""

    name: str
    doc: str | None
    consts: tuple[Const, ...]
    enums: tuple[EnumDecl, ...]
    types: tuple[TypeDecl, ...]
    vars: tuple[Var, ...]
    actions: tuple[Action, ...]
    invariants: tuple[Invariant, ...]
    expects: tuple[Expect, ...]
    liveness: tuple[Liveness, ...] = ()
    fairness: tuple[Fair, ...] = ()
    terminals: tuple[Terminal, ...] = ()
    loc: Loc = field(default=NOWHERE, compare=False)
    base: str | None = field(default=None, compare=False)
    const_values: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    strict_bounds: bool = False

    def action(self, name: str) -> Action:
        return next(a for a in self.actions if a.name == name)

    def invariant(self, name: str) -> Invariant:
        return next(i for i in self.invariants if i.name == name)

    def live(self, name: str) -> Liveness:
        return next(p for p in self.liveness if p.name == name)

    @property
    def property_names(self) -> list[str]:
        builtin = [DEADLOCK_FREE] + ([IN_BOUNDS] if self.strict_bounds else [])
        return [i.name for i in self.invariants] + [p.name for p in self.liveness] + builtin

    def expected(self, prop: str) -> Verdict | None:
        return next((e.verdict for e in self.expects if e.prop == prop), None)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.role for a in self.actions))


@dataclass(frozen=True, slots=True)
class SpecFile:
    path: str
    machines: tuple[Machine, ...]
    imports: tuple[str, ...] = ()  # the files it imports, directly or not (their machines are bases only)


def fits(src: Ty, dst: Ty) -> bool:
    """True when every value of ``src`` is statically a value of ``dst`` (no run-time check needed)."""
    match src, dst:
        case TInt(a, b), TInt(lo, hi):
            return (lo is None or (a is not None and a >= lo)) and (hi is None or (b is not None and b <= hi))
        case TNone(), TOption():
            return True
        case TOption(s), TOption(d):
            return fits(s, d)
        case _, TOption(d):
            return fits(src, d)
        case TEmptySet(), TSet():
            return True
        case TSet(s), TSet(d):
            return fits(s, d)
    return src == dst


def conjuncts(requires: tuple[Expr, ...]) -> list[Expr]:
    """A guard's top-level conjuncts in evaluation order (``and`` is lazy, so checking them one
    by one is the same semantics); runtimes and reports name the first one that fails."""
    out: list[Expr] = []
    for r in requires:
        stack: list[Expr] = [r]
        while stack:
            e = stack.pop()
            if isinstance(e, Binary) and e.op == "and":
                stack += [e.right, e.left]
            else:
                out.append(e)
    return out


def children(node: object) -> Iterator[object]:
    """The sub-nodes of an IR node (tuples are flattened); locations and types are not nodes."""
    if isinstance(node, tuple):
        yield from node
    elif is_dataclass(node) and not isinstance(node, type):
        for name in _child_fields(type(node)):
            yield getattr(node, name)


@cache
def _child_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in ("loc", "ty"))

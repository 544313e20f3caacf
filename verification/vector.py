"""Typed IR compiled to numpy: guards, updates and predicates over a whole batch of packed states.

The fast explicit engine (``bfs.py``) keeps every state as one row of small unsigned integers,
one *cell* per scalar (a map has one cell per key; a set is one cell holding a bit mask), and
runs each ground action (an action with concrete parameter values) over a whole batch of rows
at once: its guard is one boolean array, its updates are arrays of new cell codes.

Compilation is grounding, as in the Z3 encoding (``encode.py``): every parameter, quantifier
and comprehension is expanded with concrete values, so most map reads are a single column.
The output is straight-line numpy code in single-assignment form. Every temporary is
memoised by its text (common subexpressions across ground actions are computed once per
batch), and IR subtrees by their structure and the values of the variables they read (the
expanded ``def``s of big specs repeat the same subtrees many times). Each compiled function
only computes the temporaries its results need.

Semantics are the interpreter's (``spec/interp.py``), definedness included: an action is
enabled only where its guard holds, every key it reads is in its map's domain and every value
it assigns is in its declared type; a property that is undefined in a state is violated there.
``tests/test_fast_engine.py`` compares state counts and traces with the interpreter's on every
bundled and regression spec. A construct this compiler does not handle raises ``Unsupported``
and the engine uses the interpreter instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, TypeGuard

import numpy as np
from racefree.spec import ir
from racefree.spec.ir import TBool, TEmptySet, TEnum, TInt, TMap, TNone, TOption, TSet, Ty
from racefree.spec.values import State

from .subtrees import SubtreeKeys

NONE = -(2**31)  # `none` in a decoded optional column (as in the Z3 encoding)
MAX_SET_WIDTH = 62  # a set is a bit mask in an int64


class Unsupported(Exception):
    """A construct the vectorised compiler does not translate; the interpreter is used instead."""


# ------------------------------------------------------------------ layout

@dataclass(frozen=True)
class Cell:
    """One column of the packed state. Codes are small unsigned integers: ``value - lo`` for an
    integer or enum, 0/1 for a bool, 0 for ``none`` and ``value - lo + 1`` otherwise for an option,
    the bit mask (bit i: element ``lo + i``) for a set."""

    name: str
    kind: str  # "bool" | "int" | "option" | "set"
    lo: int
    size: int  # the number of codes (a set: 2 ** width)

    @property
    def bits(self) -> int:
        return max(1, (self.size - 1).bit_length())

    @property
    def width(self) -> int:
        """A set's number of elements."""
        return self.bits if self.kind == "set" else 0


def _scalar_cell(name: str, ty: Ty) -> Cell:
    match ty:
        case TBool():
            return Cell(name, "bool", 0, 2)
        case TEnum(_, members):
            return Cell(name, "int", 0, len(members))
        case TInt(lo, hi) if lo is not None and hi is not None:
            return Cell(name, "int", lo, hi - lo + 1)
        case TOption(base):
            inner = _scalar_cell(name, base)
            if inner.kind != "int":
                raise Unsupported(f"option of {base}")
            return Cell(name, "option", inner.lo, inner.size + 1)
        case TSet(elem):
            dom = ir.domain(elem)
            if len(dom) > MAX_SET_WIDTH:
                raise Unsupported(f"a set of {len(dom)} elements")
            return Cell(name, "set", int(dom[0]), 2 ** len(dom))
    raise Unsupported(f"a state variable of type {ty}")


class Layout:
    """Where each state variable lives in a packed row, and the conversions to and from the
    interpreter's state tuples (``spec/values.py``)."""

    def __init__(self, m: ir.Machine) -> None:
        self.machine = m
        self.cells: list[Cell] = []
        self.of_var: dict[str, int | list[int]] = {}
        for v in m.vars:
            ty = v.ty
            assert ty is not None
            if isinstance(ty, TMap):
                first = len(self.cells)
                self.cells += [_scalar_cell(f"{v.name}[{k}]", ty.value) for k in ir.domain(ty.key)]
                self.of_var[v.name] = list(range(first, len(self.cells)))
            else:
                self.of_var[v.name] = len(self.cells)
                self.cells.append(_scalar_cell(v.name, ty))
        biggest = max((c.size - 1 for c in self.cells), default=0)
        self.dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if biggest <= np.iinfo(t).max)
        self.bits = sum(c.bits for c in self.cells)

    def encode(self, st: State) -> np.ndarray:
        row = np.zeros(len(self.cells), dtype=self.dtype)
        for v, value in zip(self.machine.vars, st, strict=True):
            where = self.of_var[v.name]
            for i, x in zip(where if isinstance(where, list) else [where], value if isinstance(where, list) else [value],
                            strict=True):
                row[i] = self._code(self.cells[i], x)
        return row

    @staticmethod
    def _code(c: Cell, x: Any) -> int:
        if c.kind == "set":
            return sum(1 << (int(e) - c.lo) for e in x)
        if c.kind == "option":
            return 0 if x is None else int(x) - c.lo + 1
        return int(x) - c.lo

    def decode(self, row: Sequence[int] | np.ndarray) -> State:
        out = []
        for v in self.machine.vars:
            where = self.of_var[v.name]
            if isinstance(where, list):
                out.append(tuple(self._value(v.ty.value, self.cells[i], int(row[i])) for i in where))  # type: ignore[union-attr]
            else:
                out.append(self._value(v.ty, self.cells[where], int(row[where])))  # type: ignore[arg-type]
        return tuple(out)

    def decode_all(self, X: np.ndarray) -> list[State]:
        """Every row as a state tuple (column by column: far faster than row by row)."""
        per_var = []
        for v in self.machine.vars:
            where = self.of_var[v.name]
            ty = v.ty.value if isinstance(v.ty, TMap) else v.ty
            cols = [self._column(ty, self.cells[i], X[:, i]) for i in (where if isinstance(where, list) else [where])]
            per_var.append(list(zip(*cols, strict=True)) if isinstance(where, list) else cols[0])
        return list(zip(*per_var, strict=True)) if per_var else [() for _ in range(len(X))]

    def _column(self, ty: Ty | None, c: Cell, codes: np.ndarray) -> list[Any]:
        if c.kind == "int":
            return (codes.astype(np.int64) + c.lo).tolist()
        if c.kind == "bool":
            return (codes != 0).tolist()
        values = {int(x): self._value(ty, c, int(x)) for x in np.unique(codes)}  # type: ignore[arg-type]
        return [values[x] for x in codes.tolist()]

    @staticmethod
    def _value(ty: Ty, c: Cell, code: int) -> Any:
        if c.kind == "bool":
            return bool(code)
        if c.kind == "option":
            return None if code == 0 else code - 1 + c.lo
        if c.kind == "set":
            elem = ty.elem  # type: ignore[union-attr]
            return frozenset((bool(i) if isinstance(elem, TBool) else c.lo + i) for i in range(c.width) if code >> i & 1)
        return code + c.lo


# ------------------------------------------------------------------ code emission

Term = int | bool | str  # a Python constant, or the name of a temporary array


@dataclass(frozen=True)
class SetV:
    mask: Term  # int64 bit mask: bit i is element lo + i
    lo: int
    width: int


Val = Any  # Term | SetV | list (a map: one value per key)


class Emitter:
    """Single-assignment numpy code: one line per distinct temporary, shared by every function."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, tuple[str, ...]]] = []  # (name, expression, temporaries it reads)
        self._by_text: dict[str, str] = {}

    def op(self, template: str, *args: Term) -> str:
        text = template.format(*[a if isinstance(a, str) else repr(a) for a in args])
        hit = self._by_text.get(text)
        if hit is not None:
            return hit
        name = f"t{len(self.lines)}"
        self.lines.append((name, text, tuple(a for a in args if isinstance(a, str))))
        self._by_text[text] = name
        return name

    def function(self, name: str, results: list[Term]) -> str:
        """Source of ``def name(X)`` (X: a batch of packed rows) returning ``results``, with only
        the lines they need (temporaries are emitted before their readers)."""
        wanted: set[str] = {r for r in results if isinstance(r, str)}
        for n, _, deps in reversed(self.lines):
            if n in wanted:
                wanted.update(deps)
        body = [f"    {n} = {text}" for n, text, _ in self.lines if n in wanted]
        ret = ", ".join(r if isinstance(r, str) else repr(r) for r in results)
        return f"def {name}(X):\n" + "\n".join(body) + f"\n    return [{ret}]\n"


def _is_const(t: Term) -> TypeGuard[int | bool]:
    return not isinstance(t, str)


class Ops:
    """numpy operations on terms, folded when their operands are constants."""

    def __init__(self, em: Emitter) -> None:
        self.em = em

    def and_(self, a: Term, b: Term) -> Term:
        return self._join(a, b, "&", absorbing=False)

    def or_(self, a: Term, b: Term) -> Term:
        return self._join(a, b, "|", absorbing=True)

    def all_(self, terms: Sequence[Term]) -> Term:
        out: Term = True
        for t in terms:
            out = self.and_(out, t)
        return out

    def any_(self, terms: Sequence[Term]) -> Term:
        out: Term = False
        for t in terms:
            out = self.or_(out, t)
        return out

    def _join(self, a: Term, b: Term, op: str, absorbing: bool) -> Term:
        """``a & b`` (False absorbs) or ``a | b`` (True absorbs), folded; operands in a fixed
        order so that equal conjunctions are one temporary."""
        if a is absorbing or b is absorbing:
            return absorbing
        if a is (not absorbing):
            return b
        if b is (not absorbing) or a == b:
            return a
        return self.em.op("({} " + op + " {})", *sorted((a, b), key=str))

    def not_(self, a: Term) -> Term:
        return (not a) if _is_const(a) else self.em.op("(~{})", a)

    def ite(self, c: Term, a: Term, b: Term) -> Term:
        if _is_const(c):
            return a if c else b
        if a == b and type(a) is type(b):
            return a
        if a is True and b is False:
            return c
        if a is False and b is True:
            return self.not_(c)
        return self.em.op("np.where({}, {}, {})", c, a, b)

    def binop(self, op: str, a: Term, b: Term) -> Term:
        if _is_const(a) and _is_const(b):
            return _FOLD[op](a, b)
        if op in ("==", "!=") and _is_const(a):
            a, b = b, a
        return self.em.op("({} " + op + " {})", a, b)

    def call(self, fn: str, *args: Term) -> Term:
        return self.em.op(f"{fn}(" + ", ".join("{}" for _ in args) + ")", *args)


_FOLD: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b,
    "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b}


# ------------------------------------------------------------------ expressions

_ARITH = {"+": "+", "-": "-", "*": "*", "/": "//", "%": "%"}
_CMP = {"==", "!=", "<", "<=", ">", ">="}


class Compiler:
    """Grounded translation of one machine's expressions and statements into emitted terms."""

    def __init__(self, m: ir.Machine, layout: Layout) -> None:
        self.m = m
        self.layout = layout
        self.em = Emitter()
        self.ops = Ops(self.em)
        self.consts = dict(m.const_values)
        self.members = {name: i for e in m.enums for i, name in enumerate(e.members)}
        self._memo: dict[tuple[int, tuple[Any, ...]], tuple[Val, Term]] = {}
        self._keys = SubtreeKeys()

    # -------------------------------------------------------------- columns
    def column(self, i: int) -> Val:
        c = self.layout.cells[i]
        raw = f"X[:, {i}]"
        if c.kind == "bool":
            return self.em.op(f"({raw} != 0)")
        if c.kind == "set":
            return SetV(self.em.op(f"{raw}.astype(np.int64)"), c.lo, c.width)
        code = self.em.op(f"{raw}.astype(np.int64)")
        if c.kind == "option":
            return self.em.op("np.where({} == 0, {}, {} + {})", code, NONE, code, c.lo - 1)
        return code if c.lo == 0 else self.em.op("({} + {})", code, c.lo)

    def var(self, name: str) -> Val:
        where = self.layout.of_var[name]
        return [self.column(i) for i in where] if isinstance(where, list) else self.column(where)

    def encode(self, i: int, v: Val) -> Term:
        """A new value of cell ``i`` as its code."""
        c = self.layout.cells[i]
        if c.kind == "set":
            return self._set_to(v, c.lo, c.width)
        if c.kind == "bool":
            return int(v) if _is_const(v) else self.em.op("{}.astype(np.int64)", v)
        if c.kind == "option":
            return self.ops.ite(self.ops.binop("==", v, NONE), 0, self.ops.binop("-", v, c.lo - 1))
        return v if c.lo == 0 else self.ops.binop("-", v, c.lo)

    def expr(self, e: ir.Expr, env: dict[str, Any]) -> tuple[Val, Term]:
        """(value, defined) of a typed expression under concrete parameter values."""
        key = self._keys.key(e, env)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._expr(e, env)
        return hit

    def _expr(self, e: ir.Expr, env: dict[str, Any]) -> tuple[Val, Term]:
        o = self.ops
        match e:
            case ir.IntLit(v):
                return v, True
            case ir.BoolLit(v):
                return v, True
            case ir.NoneLit():
                return NONE, True
            case ir.Name(n, kind=kind):
                if kind == "var":
                    return self.var(n), True
                if kind == "const":
                    return self.consts[n], True
                if kind == "member":
                    return self.members[n], True
                return env[n], True
            case ir.Index(base, index):
                return self._index(base, index, env)
            case ir.SetLit(elems):
                if isinstance(e.ty, TEmptySet) or not elems:
                    return SetV(0, 0, 0), True
                lo, width = _set_shape(e.ty)
                vals = [self.expr(x, env) for x in elems]
                mask: Term = 0
                for v, _ in vals:
                    mask = self._or_mask(mask, self._bit(v, lo, width))
                return SetV(mask, lo, width), o.all_([d for _, d in vals])
            case ir.SetComp(bd, cond):
                lo, width = _set_shape(e.ty)
                mask = 0
                defs = []
                for x in ir.domain(bd.ty):  # type: ignore[arg-type]
                    bit, d = self.expr(cond, {**env, bd.name: x})
                    mask = self._or_mask(mask, o.ite(bit, 1 << (int(x) - lo), 0))
                    defs.append(d)
                return SetV(mask, lo, width), o.all_(defs)
            case ir.Card(x):
                s, d = self.expr(x, env)
                if _is_const(s.mask):
                    return bin(s.mask).count("1"), d
                return self.em.op("np.bitwise_count({}).astype(np.int64)", s.mask), d
            case ir.Unary("not", x):
                v, d = self.expr(x, env)
                return o.not_(v), d
            case ir.Unary("-", x):
                v, d = self.expr(x, env)
                return o.binop("-", 0, v), d
            case ir.Binary(op, left, right):
                return self._binary(op, left, right, env)
            case ir.Ite(c, a, b):
                cv, dc = self.expr(c, env)
                av, da = self.expr(a, env)
                bv, db = self.expr(b, env)
                return self._ite(cv, av, bv), o.and_(dc, o.ite(cv, da, db))
            case ir.Quant(kind, binders, body):
                parts, defs = [], []
                for values in product(*[ir.domain(b.ty) for b in binders]):  # type: ignore[arg-type]
                    v, d = self.expr(body, {**env, **{b.name: x for b, x in zip(binders, values, strict=True)}})
                    parts.append(v)
                    defs.append(d)
                return (o.all_(parts) if kind == "forall" else o.any_(parts)), o.all_(defs)
            case ir.Call(fn, args):
                vals = [self.expr(a, env) for a in args]
                acc = vals[0][0]
                for v, _ in vals[1:]:
                    acc = (min if fn == "min" else max)(acc, v) if _is_const(acc) and _is_const(v) else \
                        o.call("np.minimum" if fn == "min" else "np.maximum", acc, v)
                return acc, o.all_([d for _, d in vals])
        raise Unsupported(type(e).__name__)

    def _index(self, base: ir.Expr, index: ir.Expr, env: dict[str, Any]) -> tuple[Val, Term]:
        o = self.ops
        assert isinstance(base.ty, TMap) and index.ty is not None
        slots, db = self.expr(base, env)
        if not isinstance(slots, list):
            raise Unsupported("a map value that is not a state variable")
        k, dk = self.expr(index, env)
        keys = ir.domain(base.ty.key)
        lo = int(keys[0])
        if _is_const(k):
            pos = int(k) - lo
            if not 0 <= pos < len(keys):
                return slots[0], False
            return slots[pos], o.and_(db, dk)
        value = slots[-1]
        for pos in range(len(keys) - 2, -1, -1):
            value = self._ite(o.binop("==", k, keys[pos]), slots[pos], value)
        defined = o.and_(db, dk)
        if not ir.fits(index.ty, base.ty.key):
            inside = o.and_(o.binop(">=", k, keys[0]), o.binop("<=", k, keys[-1]))
            defined = o.and_(defined, inside)
        return value, defined

    def _binary(self, op: str, left: ir.Expr, right: ir.Expr, env: dict[str, Any]) -> tuple[Val, Term]:
        o = self.ops
        a, da = self.expr(left, env)
        b, db = self.expr(right, env)
        both = o.and_(da, db)
        match op:
            case "and":
                return o.and_(a, b), o.and_(da, o.or_(o.not_(a), db))
            case "or":
                return o.or_(a, b), o.and_(da, o.or_(a, db))
            case "implies":
                return o.or_(o.not_(a), b), o.and_(da, o.or_(o.not_(a), db))
            case "+" | "-" | "*":
                return o.binop(op, a, b), both
            case "/" | "%":
                if not (_is_const(b) and b != 0):
                    raise Unsupported("division by a non-constant")
                return o.binop(_ARITH[op], a, b), both
            case "??":
                return o.ite(o.binop("==", a, NONE), b, a), both
            case "in":
                if isinstance(left.ty, TNone):
                    return False, both
                return self._member(a, b), both
            case "subset":
                lo, width = _union_shape(a, b)
                extra = self._and_mask(self._shift(a, lo), self._not_mask(self._shift(b, lo), width))
                return o.binop("==", extra, 0), both
            case "union" | "inter" | "minus":
                lo, width = _union_shape(a, b)
                x, y = self._shift(a, lo), self._shift(b, lo)
                if op == "union":
                    return SetV(self._or_mask(x, y), lo, width), both
                if op == "inter":
                    return SetV(self._and_mask(x, y), lo, width), both
                return SetV(self._and_mask(x, self._not_mask(y, width)), lo, width), both
            case "==" | "!=":
                if isinstance(a, SetV) or isinstance(b, SetV):
                    lo, _ = _union_shape(_as_set(a), _as_set(b))
                    eq = o.binop("==", self._shift(_as_set(a), lo), self._shift(_as_set(b), lo))
                else:
                    eq = o.binop("==", a, b)
                return (eq if op == "==" else o.not_(eq)), both
            case "<" | "<=" | ">" | ">=":
                return o.binop(op, a, b), both
        raise Unsupported(op)

    # -------------------------------------------------------------- sets
    def _bit(self, v: Term, lo: int, width: int) -> Term:
        """The mask of the one-element set {v} over elements lo..lo+width-1 (empty when outside)."""
        if _is_const(v):
            return 1 << (int(v) - lo) if 0 <= int(v) - lo < width else 0
        pos = self.ops.binop("-", v, lo) if lo else v
        inside = self.ops.and_(self.ops.binop(">=", pos, 0), self.ops.binop("<", pos, width))
        return self.ops.ite(inside, self.em.op("np.left_shift(1, np.clip({}, 0, 62))", pos), 0)

    def _member(self, x: Term, s: SetV) -> Term:
        if _is_const(x):
            pos = int(x) - s.lo
            if not 0 <= pos < s.width:
                return False
            return (s.mask >> pos) & 1 == 1 if _is_const(s.mask) else self.em.op(f"(({{}} >> {pos}) & 1 == 1)", s.mask)
        return self.ops.binop("!=", self._and_mask(s.mask, self._bit(x, s.lo, s.width)), 0)

    def _or_mask(self, a: Term, b: Term) -> Term:
        if a == 0 and _is_const(a):
            return b
        if b == 0 and _is_const(b):
            return a
        return self.ops.binop("|", a, b)

    def _and_mask(self, a: Term, b: Term) -> Term:
        if (_is_const(a) and a == 0) or (_is_const(b) and b == 0):
            return 0
        return self.ops.binop("&", a, b)

    def _not_mask(self, a: Term, width: int) -> Term:
        full = (1 << width) - 1
        return full & ~a if _is_const(a) else self.ops.binop("^", a, full)

    def _shift(self, s: SetV, lo: int) -> Term:
        """The mask of ``s`` over elements starting at ``lo`` (<= s.lo)."""
        return s.mask if s.lo == lo or s.width == 0 else self.ops.binop("<<", s.mask, s.lo - lo)

    def _set_to(self, s: SetV, lo: int, width: int) -> Term:
        """``s`` as a mask over lo..lo+width-1 (elements outside dropped: checked separately)."""
        if s.width == 0:
            return 0
        mask: Term = s.mask
        if s.lo > lo:
            mask = self.ops.binop("<<", mask, s.lo - lo)
        elif s.lo < lo:
            mask = self.ops.binop(">>", mask, lo - s.lo)
        full = (1 << width) - 1
        return mask & full if _is_const(mask) else self.ops.binop("&", mask, full)

    def _set_fits(self, s: SetV, lo: int, width: int) -> Term:
        """Whether every element of ``s`` lies in lo..lo+width-1."""
        outside = 0
        for i in range(s.width):
            if not 0 <= s.lo + i - lo < width:
                outside |= 1 << i
        if outside == 0:
            return True
        return self.ops.binop("==", self._and_mask(s.mask, outside), 0)

    def _ite(self, c: Term, a: Val, b: Val) -> Val:
        if isinstance(a, SetV) or isinstance(b, SetV):
            lo, width = _union_shape(_as_set(a), _as_set(b))
            return SetV(self.ops.ite(c, self._shift(_as_set(a), lo), self._shift(_as_set(b), lo)), lo, width)
        return self.ops.ite(c, a, b)

    # -------------------------------------------------------------- actions
    def ground(self, a: ir.Action, args: tuple[Any, ...]) -> tuple[Term, Term, dict[int, Term]]:
        """(guard, blocked by a bound alone, new codes per written cell) of one ground action."""
        o = self.ops
        env = {p.name: x for p, x in zip(a.params, args, strict=True)}
        g: Term = True
        dg: Term = True
        for r in a.requires:  # a lazy `and` chain, as the interpreter evaluates it
            v, d = self.expr(r, env)
            dg = o.and_(dg, o.or_(o.not_(g), d))
            g = o.and_(g, v)
        new: dict[int, Val] = {}
        defined: list[Term] = []
        self._stmts(a.body, env, True, new, defined)
        body_ok = o.all_(defined)
        blocked = o.or_(o.not_(dg), o.and_(g, o.not_(body_ok)))
        guard = o.all_([dg, g, body_ok])
        return guard, blocked, {i: self.encode(i, v) for i, v in sorted(new.items())}

    def _stmts(self, stmts: tuple[ir.Stmt, ...], env: dict[str, Any], pc: Term, new: dict[int, Val],
               defined: list[Term]) -> None:
        o = self.ops
        for s in stmts:
            if isinstance(s, ir.If):
                c, dc = self.expr(s.cond, env)
                defined.append(o.or_(o.not_(pc), dc))
                self._stmts(s.then, env, o.and_(pc, c), new, defined)
                self._stmts(s.else_, env, o.and_(pc, o.not_(c)), new, defined)
                continue
            value, dv = self.expr(s.value, env)
            target = s.target
            assert target.ty is not None and s.value.ty is not None
            if isinstance(target, ir.Name):
                where = self.layout.of_var[target.id]
                if isinstance(where, list):
                    raise Unsupported("assigning a whole map")
                ok = o.and_(dv, self._in_type(value, s.value.ty, target.ty, where))
                defined.append(o.or_(o.not_(pc), ok))
                self._write(where, value, pc, new)
                continue
            assert isinstance(target.base, ir.Name) and isinstance(target.base.ty, TMap)
            key_ty = target.base.ty.key
            k, dk = self.expr(target.index, env)
            keys = ir.domain(key_ty)
            slots = self.layout.of_var[target.base.id]
            assert isinstance(slots, list)
            key_ok: Term = True if isinstance(key_ty, TBool) else \
                o.and_(o.binop(">=", k, keys[0]), o.binop("<=", k, keys[-1]))
            ok = o.and_(dv, self._in_type(value, s.value.ty, target.ty, slots[0]))
            defined.append(o.or_(o.not_(pc), o.all_([dk, key_ok, ok])))
            for pos, key in enumerate(keys):
                if _is_const(k):
                    if k != key:
                        continue
                    cond = pc
                else:
                    cond = o.and_(pc, o.binop("==", k, key))
                self._write(slots[pos], value, cond, new)

    def _in_type(self, value: Val, src: Ty, dst: Ty, cell: int) -> Term:
        if ir.fits(src, dst):
            return True
        o = self.ops
        base = dst.base if isinstance(dst, TOption) else dst
        if isinstance(base, TInt):
            inside = o.and_(o.binop(">=", value, base.lo), o.binop("<=", value, base.hi))
            return o.or_(o.binop("==", value, NONE), inside) if isinstance(dst, TOption) else inside
        if isinstance(dst, TSet):
            c = self.layout.cells[cell]
            return self._set_fits(_as_set(value), c.lo, c.width)
        return True

    def _write(self, cell: int, value: Val, cond: Term, new: dict[int, Val]) -> None:
        cur = new.get(cell)
        if cur is None:
            cur = self.column(cell)
        if isinstance(value, SetV) or isinstance(cur, SetV):
            c = self.layout.cells[cell]
            v = SetV(self._set_to(_as_set(value), c.lo, c.width), c.lo, c.width)
            new[cell] = v if cond is True else self._ite(cond, v, cur)
        else:
            new[cell] = value if cond is True else self.ops.ite(cond, value, cur)

    def predicate(self, e: ir.Expr, env: dict[str, Any] | None = None) -> Term:
        """A boolean state expression: true where it is defined and holds."""
        v, d = self.expr(e, env or {})
        return self.ops.and_(v, d)


def _set_shape(ty: Ty | None) -> tuple[int, int]:
    assert isinstance(ty, TSet)
    dom = ir.domain(ty.elem)
    if len(dom) > MAX_SET_WIDTH:
        raise Unsupported(f"a set of {len(dom)} elements")
    return int(dom[0]), len(dom)


def _as_set(v: Val) -> SetV:
    if not isinstance(v, SetV):
        raise Unsupported("a set compared with a non-set")
    return v


def _union_shape(a: SetV, b: SetV) -> tuple[int, int]:
    if a.width == 0:
        return b.lo, b.width
    if b.width == 0:
        return a.lo, a.width
    lo = min(a.lo, b.lo)
    hi = max(a.lo + a.width, b.lo + b.width)
    if hi - lo > MAX_SET_WIDTH:
        raise Unsupported("sets too wide")
    return lo, hi - lo

"""Typed IR expressions translated to Python ``ast`` expressions: the one translation of the semantics.

Two consumers share it, so the executable semantics exist once:
- the interpreter (``interp.py``), which reads state from unpacked tuple locals
  and encodes enum members as their indices;
- the code generator (``codegen/``), whose machines keep state in attributes
  and use ``IntEnum`` members (equal to those indices, so both agree on values).
A ``Naming`` says how a state variable, an enum member and a finite domain are
spelt; everything else (operators, laziness, well-definedness checks) is here.

The helpers the translated code calls (``ix``, ``chk``, ``chkset``, ``co``) and the
``Undefined`` exception live here too, typed, and are imported by generated
modules through ``racefree.runtime.base``.
"""

from __future__ import annotations

import ast
import gc
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from . import ir
from .ir import TBool, TEnum, TInt, TMap, TOption, TSet, Ty
from .macros import substitute

T = TypeVar("T")
N = TypeVar("N", int, int | None)


class Undefined(Exception):
    """A map key outside its domain, or an assigned value outside its type: the step is not enabled."""


def ix(m: Sequence[T], k: int, lo: int, n: int) -> T:
    """``m[k]`` for a map stored by key position, Undefined when ``k`` is not a key."""
    i = k - lo
    if 0 <= i < n:
        return m[i]
    raise Undefined


def chk(v: N, lo: int, hi: int) -> N:
    """An assigned integer (or none) that must lie in ``lo..hi``."""
    if v is None or lo <= v <= hi:
        return v
    raise Undefined


def chkset(v: frozenset[int], lo: int, hi: int) -> frozenset[int]:
    if all(lo <= x <= hi for x in v):
        return v
    raise Undefined


def co(a: T | None, b: T) -> T:
    """``a ?? b``."""
    return b if a is None else a


@contextmanager
def paused_gc() -> Iterator[None]:
    """Translating a big spec makes ~10^5 short-lived ast nodes; the cyclic collector's passes
    over them cost more than the translation (x2.5 on gpu_alloc), and they hold no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


HELPERS = {"ix": ix, "chk": chk, "chkset": chkset, "co": co, "Undefined": Undefined}

# ------------------------------------------------------------------ ast helpers

# Every node gets a location when it is made: `compile` needs one, and a
# fix_missing_locations pass over the expanded guards of big specs costs seconds.
AT = {"lineno": 1, "col_offset": 0, "end_lineno": 1, "end_col_offset": 0}


def make_name(n: str) -> ast.Name:
    return ast.Name(n, ast.Load(), **AT)


def make_attr(obj: str | ast.expr, attr: str) -> ast.Attribute:
    return ast.Attribute(make_name(obj) if isinstance(obj, str) else obj, attr, ast.Load(), **AT)


def make_call(fn: str | ast.expr, *args: ast.expr, **kwargs: ast.expr) -> ast.Call:
    return ast.Call(make_name(fn) if isinstance(fn, str) else fn, list(args),
                    [ast.keyword(k, v, **AT) for k, v in kwargs.items()], **AT)


def make_const(v: object) -> ast.Constant:
    return ast.Constant(v, **AT)


def make_tuple(items: Sequence[ast.expr]) -> ast.Tuple:
    return ast.Tuple(list(items), ast.Load(), **AT)


def make_compare(left: ast.expr, op: ast.cmpop, right: ast.expr) -> ast.Compare:
    return ast.Compare(left, [op], [right], **AT)


def make_not(e: ast.expr) -> ast.UnaryOp:
    return ast.UnaryOp(ast.Not(), e, **AT)


def make_bool(op: ast.boolop, *values: ast.expr) -> ast.BoolOp:
    return ast.BoolOp(op, list(values), **AT)


def make_listcomp(elt: ast.expr, loops: Sequence[tuple[str, ast.expr]], cond: ast.expr | None = None) -> ast.ListComp:
    gens = [ast.comprehension(ast.Name(v, ast.Store(), **AT), it, [], 0) for v, it in loops]
    if cond is not None:
        gens[-1].ifs.append(cond)
    return ast.ListComp(elt, gens, **AT)


_BINOPS: dict[str, ast.operator] = {"+": ast.Add(), "-": ast.Sub(), "*": ast.Mult(), "/": ast.FloorDiv(),
                                    "%": ast.Mod(), "union": ast.BitOr(), "inter": ast.BitAnd(),
                                    "minus": ast.Sub()}
_CMPOPS: dict[str, ast.cmpop] = {"==": ast.Eq(), "!=": ast.NotEq(), "<": ast.Lt(), "<=": ast.LtE(),
                                 ">": ast.Gt(), ">=": ast.GtE(), "in": ast.In(), "subset": ast.LtE()}


_FOLD: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv, "%": operator.mod,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def key_lo(ty: Ty) -> int:
    """The offset of a map key type: keys are stored by position ``k - lo``."""
    return ty.lo if isinstance(ty, TInt) and ty.lo is not None else 0


class Naming(Protocol):
    def var(self, name: str) -> ast.expr: ...

    def member(self, enum: TEnum, index: int) -> ast.expr: ...

    def enum_domain(self, enum: TEnum) -> ast.expr: ...

    def builtin(self, name: str) -> str:
        """The name to call for ``frozenset``, ``min`` or ``max``."""
        ...


def local_name(name: str) -> str:
    """Parameters and bound variables, in every consumer (prefixed so they never shadow a builtin)."""
    return f"p_{name}"


class PyExpr:
    """Translates typed IR expressions of one machine into ``ast`` expressions."""

    def __init__(self, m: ir.Machine, naming: Naming) -> None:
        self.consts = dict(m.const_values)
        self.enums = {name: (TEnum(e.name, e.members), i) for e in m.enums for i, name in enumerate(e.members)}
        self.naming = naming
        # Common subexpressions (interpreter only): a set comprehension, cardinality or
        # quantifier that reads only state (no parameter, no bound variable) is computed once
        # per state and kept in the compiled function's `_ms` dict. Specs that name expressions
        # with `def` repeat them a lot once expanded, and the guards of parameterised actions
        # re-read them per instance. Lazily: only evaluated where the original would have been.
        self.memo: dict[ir.Expr, int] | None = None
        self._locals_cache: dict[int, frozenset[str]] = {}
        self._binders: list[str] = []  # the comprehensions' and quantifiers' variables around the expression
        self._made: list[ir.Expr] = []  # IR built here (substitutions), kept alive: _locals_cache is keyed by id

    def domain(self, ty: Ty) -> ast.expr:
        match ty:
            case TBool():
                return make_tuple([make_const(False), make_const(True)])
            case TInt(lo, hi):
                assert lo is not None and hi is not None
                return make_call("range", make_const(lo), make_const(hi + 1))
            case TEnum():
                return self.naming.enum_domain(ty)
        raise AssertionError(ty)

    def _free_locals(self, e: object) -> frozenset[str]:
        key = id(e)
        hit = self._locals_cache.get(key)
        if hit is not None:
            return hit
        out: frozenset[str] = frozenset()
        if isinstance(e, ir.Name):
            out = frozenset({e.id}) if e.kind in ("param", "bound") else frozenset()
        else:
            out = out.union(*[self._free_locals(c) for c in ir.children(e)])
            if isinstance(e, ir.Quant):
                out = out - {b.name for b in e.binders}
            elif isinstance(e, ir.SetComp):
                out = out - {e.binder.name}
        self._locals_cache[key] = out
        return out

    def expr(self, e: ir.Expr) -> ast.expr:
        if self.memo is not None and isinstance(e, ir.SetComp | ir.Card | ir.Quant) \
                and not (isinstance(e, ir.Card) and isinstance(e.operand, ir.Name | ir.Index)):  # len(x): cheaper than a lookup
            free = self._free_locals(e)
            # Keyed by the values of its parameters and bound variables: worth it only inside a
            # loop over some other variable, which would recompute it for each of its values
            # (grantT(q) inside {g: Gpu | exists q: P. ...} is computed once per q, not per g and q).
            if not free or any(b not in free for b in self._binders):
                # evaluated once per key: inside it, the loops around it are not loops
                outer, self._binders = self._binders, []
                try:
                    src = self._expr(e)
                finally:
                    self._binders = outer
                # IR nodes compare structurally (not by location): equal nodes translate to equal code.
                i = self.memo.setdefault(e, len(self.memo))
                key = make_const(i) if not free else make_tuple([make_const(i), *[make_name(local_name(n))
                                                                                   for n in sorted(free)]])
                slot = ast.Subscript(make_name("_ms"), key, ast.Load(), **AT)
                fill = make_call(make_attr("_ms", "setdefault"), key, src)
                return ast.IfExp(make_compare(key, ast.In(), make_name("_ms")), slot, fill, **AT)
        return self._expr(e)

    def _expr(self, e: ir.Expr) -> ast.expr:
        match e:
            case ir.IntLit(v) | ir.BoolLit(v):
                return make_const(v)
            case ir.NoneLit():
                return make_const(None)
            case ir.Name(n, kind=kind):
                if kind == "var":
                    return self.naming.var(n)
                if kind == "const":
                    return make_const(self.consts[n])
                if kind == "member":
                    return self.naming.member(*self.enums[n])
                return make_name(local_name(n))
            case ir.Index(base, index):
                assert isinstance(base.ty, TMap) and index.ty is not None
                key = base.ty.key
                b, k, lo = self.expr(base), self.expr(index), key_lo(key)
                if ir.fits(index.ty, key):
                    pos = ast.BinOp(k, ast.Sub(), make_const(lo), **AT) if lo else k
                    return ast.Subscript(b, pos, ast.Load(), **AT)
                return make_call("ix", b, k, make_const(lo), make_const(len(ir.domain(key))))
            case ir.SetLit(elems):
                if not elems:
                    return make_name("EMPTY")
                return make_call(self.naming.builtin("frozenset"), make_tuple([self.expr(x) for x in elems]))
            case ir.SetComp(bd, cond):
                v = local_name(bd.name)
                assert bd.ty is not None
                return make_call(self.naming.builtin("frozenset"), make_listcomp(make_name(v), [(v, self.domain(bd.ty))],
                                                                                 self._in_loop(cond, [bd.name])))
            case ir.Card(x):
                return make_call("len", self.expr(x))
            case ir.Unary("not", x):
                return make_not(self.expr(x))
            case ir.Unary("-", x):
                return ast.UnaryOp(ast.USub(), self.expr(x), **AT)
            case ir.Binary(op, left, right):
                return self._binary(op, left, right)
            case ir.Ite(c, a, b):
                cond = self.expr(c)
                if isinstance(cond, ast.Constant):  # `if 0 == 0 then ...` after const substitution
                    return self.expr(a) if cond.value else self.expr(b)
                return ast.IfExp(cond, self.expr(a), self.expr(b), **AT)
            case ir.Quant(kind, binders, body):
                loops = [(local_name(b.name), self.domain(b.ty)) for b in binders]  # type: ignore[arg-type]
                body_src = self._in_loop(body, [b.name for b in binders])
                return make_call("all" if kind == "forall" else "any", make_listcomp(body_src, loops))
            case ir.Call(fn, args):
                return make_call(self.naming.builtin(fn), *[self.expr(a) for a in args])
        raise AssertionError(e)

    def _in_loop(self, e: ir.Expr, names: list[str]) -> ast.expr:
        self._binders += names
        try:
            return self.expr(e)
        finally:
            del self._binders[len(self._binders) - len(names):]

    def _member_of_comprehension(self, elem: ir.Expr, comp: ir.SetComp) -> ast.expr | None:
        """``x in {v: T | P}`` as ``P[v := x]`` (with ``x`` in T): one evaluation of P instead of
        one per value of T. Only where the test runs once per transition (outside every loop: in
        one, the memoised set answers each test at once), where P cannot be undefined (then the
        set's value would be), and where no binder inside P captures a name of ``x``."""
        bd = comp.binder
        if self._binders or bd.ty is None or elem.ty is None or not isinstance(bd.ty, TInt | TEnum | TBool):
            return None
        if not (ir.fits(elem.ty, bd.ty) or isinstance(elem.ty, TInt) and isinstance(bd.ty, TInt)):
            return None
        inner = {b.name for n in _nodes(comp.cond) if isinstance(n, ir.Quant) for b in n.binders}
        inner |= {n.binder.name for n in _nodes(comp.cond) if isinstance(n, ir.SetComp)}
        if inner & self._free_locals(elem):
            return None
        self._made.append(substitute(comp.cond, {bd.name: elem}))
        body = self.expr(self._made[-1])
        if may_be_undefined(body):
            return None
        if ir.fits(elem.ty, bd.ty):
            return body
        assert isinstance(bd.ty, TInt) and bd.ty.lo is not None and bd.ty.hi is not None
        x = self.expr(elem)
        in_range = ast.Compare(make_const(bd.ty.lo), [ast.LtE(), ast.LtE()], [x, make_const(bd.ty.hi)], **AT)
        return make_bool(ast.And(), in_range, body)

    def _member_of_set_algebra(self, elem: ir.Expr, s: ir.Binary) -> ast.expr | None:
        """``x in A inter B`` as ``x in A and x in B`` (union: or; minus: and not): no set is built
        for one test. Only for a plain ``x`` (it is evaluated twice), and where the second test,
        which may now be skipped, cannot be undefined."""
        if not isinstance(elem, ir.Name | ir.IntLit):
            return None
        first, second = self._binary("in", elem, s.left), self._binary("in", elem, s.right)
        if may_be_undefined(second):
            return None
        if s.op == "union":
            return make_bool(ast.Or(), first, second)
        return make_bool(ast.And(), first, second if s.op == "inter" else make_not(second))

    def _binary(self, op: str, left: ir.Expr, right: ir.Expr) -> ast.expr:
        if op == "in" and isinstance(right, ir.SetComp):
            direct = self._member_of_comprehension(left, right)
            if direct is not None:
                return direct
        if op == "in" and isinstance(right, ir.SetLit) and right.elems and isinstance(left, ir.Name | ir.IntLit):
            # x in {a, b}: x == a or x == b, with no set built (a later element may be skipped)
            tests = [self._binary("==", left, x) for x in right.elems]
            if not any(may_be_undefined(t) for t in tests[1:]):
                return tests[0] if len(tests) == 1 else make_bool(ast.Or(), *tests)
        if op == "in" and isinstance(right, ir.Binary) and right.op in ("inter", "union", "minus"):
            direct = self._member_of_set_algebra(left, right)
            if direct is not None:
                return direct
        a, b = self.expr(left), self.expr(right)
        match op:
            case "and":
                return make_bool(ast.And(), a, b)
            case "or":
                return make_bool(ast.Or(), a, b)
            case "implies":
                return make_bool(ast.Or(), make_not(a), b)
            case "??":
                return make_call("co", a, b)
            case "==" | "!=" if isinstance(right, ir.NoneLit) or isinstance(left, ir.NoneLit):
                # `is` keeps mypy's narrowing of optionals in generated code; same truth value.
                return make_compare(a, ast.Is() if op == "==" else ast.IsNot(), b)
        if isinstance(a, ast.Constant) and isinstance(b, ast.Constant) and op in _FOLD:
            # Constants meet after `const` substitution (`NG == 0`): fold them, as a type checker
            # would otherwise flag a comparison of two literals (mypy --strict-equality).
            return make_const(_FOLD[op](a.value, b.value))
        if op in _CMPOPS:
            return make_compare(a, _CMPOPS[op], b)
        return ast.BinOp(a, _BINOPS[op], b, **AT)

    def checked(self, value: ir.Expr, target: Ty) -> ast.expr:
        """The value, with a range check when its type does not statically fit the target."""
        e = self.expr(value)
        assert value.ty is not None
        if ir.fits(value.ty, target):
            return e
        base = target.base if isinstance(target, TOption) else target
        if isinstance(base, TInt):
            return make_call("chk", e, make_const(base.lo), make_const(base.hi))
        if isinstance(target, TSet) and isinstance(target.elem, TInt):
            return make_call("chkset", e, make_const(target.elem.lo), make_const(target.elem.hi))
        return e

    def source(self, e: ir.Expr) -> str:
        return ast.unparse(self.expr(e))


def _nodes(e: object) -> Iterator[object]:
    yield e
    for c in ir.children(e):
        yield from _nodes(c)


def may_be_undefined(e: ast.expr) -> bool:
    """Whether compiled code checks a key or a value against its type (``ix``, ``chk``, ``chkset``)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("ix", "chk", "chkset")
               for n in ast.walk(e))

"""Typed IR -> Z3: a grounded, cell-level encoding of one machine.

Every state variable is flattened into *cells*, scalar Z3 constants: a map gets
one cell per key, a set one Bool per possible element, an option an Int whose
value ``NONE`` means none. Actions are *grounded*: each parameter combination
becomes its own transition with concrete indices, so most map reads resolve to
a single cell and the cone-of-influence of a property is exact.

Semantics match ``racefree.spec.interp`` (the oracle), including definedness:
an action is enabled only when every key it evaluates is in its map's domain
and every assigned value is in its declared type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import z3
from racefree.spec import ir
from racefree.spec.ir import TBool, TEmptySet, TInt, TMap, TNone, TOption, TSet, Ty
from racefree.spec.values import show_scalar

from .result import Stutter
from .subtrees import SubtreeKeys

NONE = -(2**31)  # the encoding of `none` in an optional cell
TRUE = z3.BoolVal(True)  # "always defined": compared by identity so no Z3 terms are built for it


def _defined(*parts: z3.BoolRef) -> z3.BoolRef:
    real = [p for p in parts if p is not TRUE]
    return TRUE if not real else real[0] if len(real) == 1 else z3.And(real)


def _defined_if(cond: z3.BoolRef, d: z3.BoolRef) -> z3.BoolRef:
    """Definedness of a lazily evaluated operand: only needed when ``cond`` holds."""
    return TRUE if d is TRUE else z3.Or(z3.Not(cond), d)

Val = Any  # a z3 term, or for sets a dict: element -> z3 Bool


@dataclass(frozen=True)
class Cell:
    """One scalar Z3 constant of the state."""

    name: str  # spec syntax: "state[0]", "1 in fin[2]", "trained"
    var: str
    ty: Ty  # the scalar type of this cell (TBool for set membership)
    values: tuple[int | bool, ...]  # the encoded values it may take (type bounds)

    @property
    def is_bool(self) -> bool:
        return isinstance(self.ty, TBool)


@dataclass
class GroundAction:
    action: ir.Action
    args: tuple[Any, ...]
    guard: z3.BoolRef  # over the base frame, definedness included
    updates: dict[int, z3.ExprRef]  # cell index -> new value over the base frame

    @property
    def label(self) -> str:
        return self.action.name + (str(self.args) if self.args else "")


def _scalar_values(ty: Ty) -> tuple[int | bool, ...]:
    if isinstance(ty, TOption):
        return (NONE, *ir.domain(ty.base))
    return ir.domain(ty)


class Renaming:
    """A substitution applied to many terms. ``z3.substitute`` rebuilds its pair arrays and checks
    every pair's sort on each call, which dominated slicing; here they are built once."""

    def __init__(self, old: Sequence[z3.ExprRef], new: Sequence[z3.ExprRef]) -> None:
        self.keep = (list(old), list(new))  # the arrays hold raw pointers: keep the terms alive
        self.n = len(self.keep[0])
        self._from = (z3.Ast * self.n)(*[x.as_ast() for x in self.keep[0]])
        self._to = (z3.Ast * self.n)(*[x.as_ast() for x in self.keep[1]])

    def __call__(self, e: z3.ExprRef) -> z3.ExprRef:
        if not self.n:
            return e
        ctx = e.ctx
        return z3.z3._to_expr_ref(z3.Z3_substitute(ctx.ref(), e.as_ast(), self.n, self._from, self._to), ctx)


def literal(v: int | bool) -> z3.ExprRef:
    """A Python value in the canonical encoding as a Z3 constant."""
    return z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(v)


class Encoding:
    """Cells, initial state, grounded transitions and properties of one machine."""

    def __init__(self, m: ir.Machine) -> None:
        self.machine = m
        self.consts = dict(m.const_values)
        self.members = {name: i for e in m.enums for i, name in enumerate(e.members)}
        self.cells: list[Cell] = []
        self.layout: dict[str, Any] = {}  # var -> cell index | {elem: idx} | [per key ...]
        for v in m.vars:
            self.layout[v.name] = self._alloc(v.name, v.name, v.ty)  # type: ignore[arg-type]
        self.base = self.frame("")
        # Translations over the base frame, memoised per subtree and the parameter values it reads
        # (expanded defs repeat subtrees across and within ground actions).
        self._base_view = self.view(self.base)
        self._keys = SubtreeKeys()
        self._memo: dict[tuple[int, tuple[Any, ...]], tuple[Val, z3.BoolRef]] = {}
        self._index = {c.name: i for i, c in enumerate(self.cells)}
        self._steps: dict[tuple[tuple[int, ...] | None, str], tuple[z3.BoolRef, z3.ArithRef, list[z3.ExprRef]]] = {}
        self.init_values = self._initial_values()
        # Per ground action that may be blocked by a type bound alone: (action, args, where it is).
        self.bound_blocks: list[tuple[ir.Action, tuple[Any, ...], z3.BoolRef]] = []
        self.actions = [ga for a in m.actions for ga in self._ground(a)]

    # ----------------------------------------------------------------- layout
    def _alloc(self, display: str, var: str, ty: Ty) -> Any:
        if isinstance(ty, TMap):
            return [self._alloc(f"{display}[{show_scalar(ty.key, k)}]", var, ty.value) for k in ir.domain(ty.key)]
        if isinstance(ty, TSet):
            out = {}
            for x in ir.domain(ty.elem):
                out[x] = len(self.cells)
                self.cells.append(Cell(f"{show_scalar(ty.elem, x)} in {display}", var, TBool(), (False, True)))
            return out
        self.cells.append(Cell(display, var, ty, _scalar_values(ty)))
        return len(self.cells) - 1

    def frame(self, tag: str) -> list[z3.ExprRef]:
        """Fresh constants for one state; ``tag`` keeps frames apart (e.g. '@3')."""
        return [z3.Bool(c.name + tag) if c.is_bool else z3.Int(c.name + tag) for c in self.cells]

    def domain_constraint(self, frame: Sequence[z3.ExprRef], cells: Sequence[int] | None = None) -> z3.BoolRef:
        """Every Int cell within its type's values (an invariant by construction, re-checked in certificates)."""
        parts = []
        for i in range(len(self.cells)) if cells is None else cells:
            c, x = self.cells[i], frame[i]
            if c.is_bool:
                continue
            if isinstance(c.ty, TOption):
                lo, hi = c.values[1], c.values[-1]
                parts.append(z3.Or(x == NONE, z3.And(x >= lo, x <= hi)))
            else:
                parts.append(z3.And(x >= c.values[0], x <= c.values[-1]))
        return z3.And(parts) if parts else z3.BoolVal(True)

    def view(self, frame: Sequence[z3.ExprRef]) -> dict[str, Any]:
        def build(node: Any) -> Any:
            if isinstance(node, int):
                return frame[node]
            if isinstance(node, dict):
                return {k: frame[i] for k, i in node.items()}
            return [build(n) for n in node]

        return {name: build(node) for name, node in self.layout.items()}

    def init(self, frame: Sequence[z3.ExprRef]) -> z3.BoolRef:
        parts = []
        view = self.view(frame)
        for v in self.machine.vars:
            value, _ = self.expr(v.init, {}, view)
            target = view[v.name]
            slots = target if isinstance(v.ty, TMap) else [target]
            for slot in slots:
                parts.append(self._eq(slot, value))
        return z3.And(parts) if parts else z3.BoolVal(True)

    def _initial_values(self) -> list[int | bool]:
        """The (deterministic) initial value of every cell."""
        solver = z3.Solver()
        solver.add(self.init(self.base))
        if solver.check() != z3.sat:
            raise AssertionError("initial state is unsatisfiable")
        model = solver.model()
        out: list[int | bool] = []
        for c, x in zip(self.cells, self.base, strict=True):
            v = model.eval(x, model_completion=True)
            out.append(z3.is_true(v) if c.is_bool else v.as_long())
        return out

    def substitute(self, e: z3.ExprRef, frame: Sequence[z3.ExprRef]) -> z3.ExprRef:
        return Renaming(self.base, frame)(e)

    def step_relation(self, pre: Sequence[z3.ExprRef], post: Sequence[z3.ExprRef], pick: z3.ArithRef,
                      cells: tuple[int, ...] | None = None, stutter: Stutter = "never") -> z3.BoolRef:
        """pre -> post under the ground action numbered ``pick`` (selector encoding, linear in the updates).

        With ``cells``, only those cells are constrained and only actions writing one of them
        may be picked (a cone-of-influence slice; see coi.py). Frames are always full length.
        ``pick == -1`` is a stutter (no change): never, only in a deadlock (no action
        enabled: the run has ended, and an ended run stutters forever), or always.
        """
        key = (cells, stutter)
        if key not in self._steps:
            keep = range(len(self.cells)) if cells is None else cells
            wanted = set(keep)
            chosen = [i for i, ga in enumerate(self.actions) if cells is None or wanted.intersection(ga.updates)]
            sel = z3.Int("pick")
            nxt = self.frame("'")
            options = [sel == i for i in chosen]
            if stutter == "always":
                options.append(sel == -1)
            elif stutter == "deadlock":
                options.append(z3.And(sel == -1, z3.Not(self.some_enabled(self.base))))
            parts: list[z3.BoolRef] = [z3.Or(options) if options else z3.BoolVal(False)]
            parts += [z3.Implies(sel == i, self.actions[i].guard) for i in chosen]
            for c in keep:
                value: z3.ExprRef = self.base[c]
                for i in chosen:
                    if c in self.actions[i].updates:
                        value = z3.If(sel == i, self.actions[i].updates[c], value)
                parts.append(nxt[c] == value)
            self._steps[key] = (z3.And(parts), sel, nxt)
        rel, sel, nxt = self._steps[key]
        idx = range(len(self.cells)) if cells is None else cells
        pairs = [(self.base[c], pre[c]) for c in idx] + [(nxt[c], post[c]) for c in idx] + [(sel, pick)]
        return z3.substitute(rel, *pairs)  # type: ignore[return-value]

    def some_enabled(self, frame: Sequence[z3.ExprRef]) -> z3.BoolRef:
        guards = z3.Or([ga.guard for ga in self.actions]) if self.actions else z3.BoolVal(False)
        return self.substitute(guards, frame)  # type: ignore[return-value]

    def deadlock_free(self, frame: Sequence[z3.ExprRef]) -> z3.BoolRef:
        """Some action is enabled, or a declared terminal condition holds."""
        ok = [self.some_enabled(self.base)] + [self.invariant(t.expr, self.base) for t in self.machine.terminals]
        return self.substitute(z3.Or(ok), frame)  # type: ignore[return-value]

    def in_bounds(self, frame: Sequence[z3.ExprRef]) -> z3.BoolRef:
        """The built-in ``in_bounds``: no ground action is blocked by a type bound alone."""
        ok = z3.Not(z3.Or([b for _, _, b in self.bound_blocks])) if self.bound_blocks else z3.BoolVal(True)
        return self.substitute(ok, frame)  # type: ignore[return-value]

    def invariant(self, e: ir.Expr, frame: Sequence[z3.ExprRef], env: dict[str, Any] | None = None) -> z3.BoolRef:
        """A boolean state expression as a formula: true only where it is defined and holds."""
        view = self._base_view if frame is self.base else self.view(frame)
        value, defined = self.expr(e, env or {}, view)
        return value if defined is TRUE else z3.And(defined, value)

    # ------------------------------------------------------------- grounding
    def _ground(self, a: ir.Action) -> list[GroundAction]:
        out = []
        domains = [ir.domain(p.ty) for p in a.params]  # type: ignore[arg-type]
        for args in _product(domains):
            env = {p.name: x for p, x in zip(a.params, args, strict=True)}
            view = self._base_view
            guard_expr: ir.Expr = ir.BoolLit(True, ty=TBool())
            for r in a.requires:
                guard_expr = r if guard_expr == ir.BoolLit(True) else ir.Binary("and", guard_expr, r, ty=TBool())
            g, dg = self.expr(guard_expr, env, view)
            new: dict[int, z3.ExprRef] = {}
            defined: list[z3.BoolRef] = []
            self._stmts(a.body, env, view, z3.BoolVal(True), new, defined)
            # Disabled by a bound alone: the guard is undefined, or it holds and the body is undefined.
            blocked = z3.simplify(z3.Or(z3.Not(dg), z3.And(g, z3.Not(z3.And(*defined)))))
            if not z3.is_false(blocked):
                self.bound_blocks.append((a, tuple(args), blocked))
            guard = z3.simplify(z3.And(dg, g, *defined))
            if z3.is_false(guard):
                continue
            updates = {i: z3.simplify(e) for i, e in new.items()}
            updates = {i: e for i, e in updates.items() if not e.eq(self.base[i])}
            out.append(GroundAction(a, tuple(args), guard, updates))
        return out

    def _stmts(self, stmts: tuple[ir.Stmt, ...], env: dict[str, Any], view: dict[str, Any],
               pc: z3.BoolRef, new: dict[int, z3.ExprRef], defined: list[z3.BoolRef]) -> None:
        for s in stmts:
            if isinstance(s, ir.If):
                c, dc = self.expr(s.cond, env, view)
                defined.append(z3.Implies(pc, dc))
                self._stmts(s.then, env, view, z3.And(pc, c), new, defined)
                self._stmts(s.else_, env, view, z3.And(pc, z3.Not(c)), new, defined)
                continue
            value, dv = self.expr(s.value, env, view)
            target = s.target
            assert target.ty is not None and s.value.ty is not None
            ok = z3.And(dv, self._in_type(value, s.value.ty, target.ty))
            if isinstance(target, ir.Name):
                self._write(self.layout[target.id], value, pc, new)
                defined.append(z3.Implies(pc, ok))
                continue
            assert isinstance(target.base, ir.Name) and isinstance(target.base.ty, TMap)
            key_ty = target.base.ty.key
            k, dk = self.expr(target.index, env, view)
            keys = ir.domain(key_ty)
            slots = self.layout[target.base.id]
            defined.append(z3.Implies(pc, z3.And(dk, self._key_ok(k, key_ty), ok)))
            for pos, key in enumerate(keys):
                hit = _const_eq(k, key)
                if hit is False:
                    continue
                cond = pc if hit is True else z3.And(pc, k == literal(key))
                self._write(slots[pos], value, cond, new)

    def _write(self, node: Any, value: Val, cond: z3.BoolRef, new: dict[int, z3.ExprRef]) -> None:
        if isinstance(node, int):
            cur = new.get(node, self.base[node])
            new[node] = value if z3.is_true(cond) else z3.If(cond, value, cur)
            return
        for elem, idx in node.items():  # a set: one Bool per element
            bit = value.get(elem, z3.BoolVal(False))
            cur = new.get(idx, self.base[idx])
            new[idx] = bit if z3.is_true(cond) else z3.If(cond, bit, cur)

    def _in_type(self, value: Val, src: Ty, dst: Ty) -> z3.BoolRef:
        if ir.fits(src, dst):
            return z3.BoolVal(True)
        base = dst.base if isinstance(dst, TOption) else dst
        if isinstance(base, TInt):
            inside = z3.And(value >= base.lo, value <= base.hi)
            return z3.Or(value == NONE, inside) if isinstance(dst, TOption) else inside
        if isinstance(dst, TSet):
            allowed = set(ir.domain(dst.elem))
            return z3.And([z3.Not(b) for x, b in value.items() if x not in allowed] or [z3.BoolVal(True)])
        return z3.BoolVal(True)

    def _key_ok(self, k: z3.ExprRef, key_ty: Ty) -> z3.BoolRef:
        if isinstance(key_ty, TBool):
            return z3.BoolVal(True)
        dom = ir.domain(key_ty)
        return z3.And(k >= dom[0], k <= dom[-1])

    # ------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr, env: dict[str, Any], view: dict[str, Any]) -> tuple[Val, z3.BoolRef]:
        """(value, defined) of a typed expression; ``env`` binds parameters to concrete values."""
        if view is not self._base_view:
            return self._expr(e, env, view)
        key = self._keys.key(e, env)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._expr(e, env, view)
        return hit

    def _expr(self, e: ir.Expr, env: dict[str, Any], view: dict[str, Any]) -> tuple[Val, z3.BoolRef]:
        T = TRUE
        match e:
            case ir.IntLit(v):
                return z3.IntVal(v), T
            case ir.BoolLit(v):
                return z3.BoolVal(v), T
            case ir.NoneLit():
                return z3.IntVal(NONE), T
            case ir.Name(n, kind=kind):
                if kind == "var":
                    return view[n], T
                if kind == "const":
                    return z3.IntVal(self.consts[n]), T
                if kind == "member":
                    return z3.IntVal(self.members[n]), T
                return literal(env[n]), T
            case ir.Index(base, index):
                assert isinstance(base.ty, TMap)
                slots, db = self.expr(base, env, view)
                k, dk = self.expr(index, env, view)
                keys = ir.domain(base.ty.key)
                k = z3.simplify(k)
                concrete = _concrete(k)
                if concrete is not None:
                    pos = _position(keys, concrete)
                    if pos is None:  # a concrete key outside the domain
                        return slots[0], z3.BoolVal(False)
                    return slots[pos], _defined(db, dk)
                value = slots[-1]
                for pos in range(len(keys) - 2, -1, -1):
                    value = self._ite(k == literal(keys[pos]), slots[pos], value)
                return value, _defined(db, dk, self._key_ok(k, base.ty.key))
            case ir.SetLit(elems):
                vals = [self.expr(x, env, view) for x in elems]
                if isinstance(e.ty, TEmptySet):
                    return {}, T
                assert isinstance(e.ty, TSet)
                out = {}
                for d in ir.domain(e.ty.elem):
                    out[d] = z3.simplify(z3.Or([v == literal(d) for v, _ in vals]))
                return out, _defined(*[dv for _, dv in vals])
            case ir.SetComp(bd, cond):
                out, defs = {}, []
                for x in ir.domain(bd.ty):  # type: ignore[arg-type]
                    bit, d = self.expr(cond, {**env, bd.name: x}, view)
                    out[x] = z3.simplify(bit)
                    defs.append(d)
                return out, _defined(*defs)
            case ir.Card(x):
                s, d = self.expr(x, env, view)
                return z3.Sum([z3.If(b, 1, 0) for b in s.values()] or [z3.IntVal(0)]), d
            case ir.Unary("not", x):
                v, d = self.expr(x, env, view)
                return z3.Not(v), d
            case ir.Unary("-", x):
                v, d = self.expr(x, env, view)
                return -v, d
            case ir.Binary(op, left, right):
                return self._binary(op, left, right, env, view)
            case ir.Ite(c, a, b):
                cv, dc = self.expr(c, env, view)
                av, da = self.expr(a, env, view)
                bv, db = self.expr(b, env, view)
                branches = TRUE if da is TRUE and db is TRUE else z3.If(cv, da, db)
                return self._ite(cv, av, bv), _defined(dc, branches)
            case ir.Quant(kind, binders, body):
                parts, defs = [], []
                for values in _product([ir.domain(b.ty) for b in binders]):  # type: ignore[arg-type]
                    inner = dict(env)
                    inner.update({b.name: x for b, x in zip(binders, values, strict=True)})
                    v, d = self.expr(body, inner, view)
                    parts.append(v)
                    defs.append(d)
                joined = z3.And(parts) if kind == "forall" else z3.Or(parts)
                return joined, _defined(*defs)
            case ir.Call(fn, args):
                vals = [self.expr(a, env, view) for a in args]
                acc = vals[0][0]
                for v, _ in vals[1:]:
                    acc = z3.If(v < acc, v, acc) if fn == "min" else z3.If(v > acc, v, acc)
                return acc, _defined(*[d for _, d in vals])
        raise AssertionError(e)

    def _binary(self, op: str, left: ir.Expr, right: ir.Expr, env: dict[str, Any],
                view: dict[str, Any]) -> tuple[Val, z3.BoolRef]:
        a, da = self.expr(left, env, view)
        b, db = self.expr(right, env, view)
        both = _defined(da, db)
        match op:
            case "and":
                return z3.And(a, b), _defined(da, _defined_if(a, db))
            case "or":
                return z3.Or(a, b), _defined(da, _defined_if(z3.Not(a), db))
            case "implies":
                return z3.Implies(a, b), _defined(da, _defined_if(a, db))
            case "+":
                return a + b, both
            case "-":
                return a - b, both
            case "*":
                return a * b, both
            case "/":
                return a / b, both
            case "%":
                return a % b, both
            case "<":
                return a < b, both
            case "<=":
                return a <= b, both
            case ">":
                return a > b, both
            case ">=":
                return a >= b, both
            case "==" | "!=":
                eq = self._eq(a, b)
                return (eq if op == "==" else z3.Not(eq)), both
            case "??":
                return z3.If(a == NONE, b, a), both
            case "in":
                if isinstance(left.ty, TNone):
                    return z3.BoolVal(False), both
                parts = []
                for x, bit in b.items():
                    hit = _const_eq(a, x)
                    if hit is True:
                        return bit, both
                    if hit is None:
                        parts.append(z3.And(a == literal(x), bit))
                return (z3.Or(parts) if parts else z3.BoolVal(False)), both
            case "subset":
                return z3.And([z3.Implies(bit, b.get(x, z3.BoolVal(False))) for x, bit in a.items()]
                              or [z3.BoolVal(True)]), both
            case "union" | "inter" | "minus":
                F = z3.BoolVal(False)
                keys = list(dict.fromkeys([*a, *b]))
                if op == "union":
                    return {x: z3.Or(a.get(x, F), b.get(x, F)) for x in keys}, both
                if op == "inter":
                    return {x: z3.And(a.get(x, F), b.get(x, F)) for x in keys}, both
                return {x: z3.And(bit, z3.Not(b.get(x, F))) for x, bit in a.items()}, both
        raise AssertionError(op)

    def _eq(self, a: Val, b: Val) -> z3.BoolRef:
        if isinstance(a, dict) or isinstance(b, dict):
            a = a if isinstance(a, dict) else {}
            b = b if isinstance(b, dict) else {}
            F = z3.BoolVal(False)
            keys = list(dict.fromkeys([*a, *b]))
            return z3.And([a.get(x, F) == b.get(x, F) for x in keys] or [z3.BoolVal(True)])
        return a == b

    def _ite(self, c: z3.BoolRef, a: Val, b: Val) -> Val:
        if isinstance(a, dict) or isinstance(b, dict):
            F = z3.BoolVal(False)
            keys = list(dict.fromkeys([*a, *b]))
            return {x: z3.If(c, a.get(x, F), b.get(x, F)) for x in keys}
        return z3.If(c, a, b)

    # -------------------------------------------------------------- utilities
    def free_cells(self, e: z3.ExprRef) -> set[int]:
        index = self._index
        out: set[int] = set()
        seen: set[int] = set()
        stack = [e]
        while stack:
            x = stack.pop()
            key = x.get_id()
            if key in seen:
                continue
            seen.add(key)
            if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                i = index.get(x.decl().name())
                if i is not None:
                    out.add(i)
            else:
                stack.extend(x.children())
        return out

    def decode(self, model: z3.ModelRef, frame: Sequence[z3.ExprRef]) -> tuple[Any, ...]:
        """A Z3 model of one frame -> a state in the canonical encoding (spec/values.py)."""
        flat = []
        for c, x in zip(self.cells, frame, strict=True):
            v = model.eval(x, model_completion=True)
            flat.append(z3.is_true(v) if c.is_bool else v.as_long())

        def build(node: Any, ty: Ty) -> Any:
            if isinstance(ty, TMap):
                return tuple(build(n, ty.value) for n in node)
            if isinstance(ty, TSet):
                return frozenset(k for k, i in node.items() if flat[i])
            v = flat[node]
            if isinstance(ty, TOption):
                return None if v == NONE else v
            return v

        return tuple(build(self.layout[v.name], v.ty) for v in self.machine.vars)  # type: ignore[arg-type]


def _concrete(k: Any) -> int | bool | None:
    """The Python value of a literal key term, or None when it is symbolic."""
    if z3.is_int_value(k):
        return k.as_long()
    if z3.is_true(k):
        return True
    if z3.is_false(k):
        return False
    return None


def _position(keys: tuple[int | bool, ...], key: int | bool) -> int | None:
    if isinstance(key, bool):
        return int(key)
    lo = keys[0]
    return key - lo if not isinstance(lo, bool) and lo <= key <= keys[-1] else None


def _const_eq(k: Any, key: int | bool) -> bool | None:
    """Whether a (possibly concrete) key term equals ``key``: True, False, or None when symbolic."""
    if z3.is_int_value(k):
        return k.as_long() == key
    if z3.is_true(k) or z3.is_false(k):
        return z3.is_true(k) == key
    return None


def _product(domains: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [()]
    for d in domains:
        out = [prefix + (x,) for prefix in out for x in d]
    return out


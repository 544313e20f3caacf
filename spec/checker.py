"""Type checker: resolves names and types and returns the typed IR.

Every expression in the result carries its ``ty``; every ``Name`` its ``kind``.
Consumers (interpreter, Z3 encoder, printer, code generator) rely on that and
never re-derive types. All errors are located, coded ``SpecError``s.

Integer types are intervals. Arithmetic widens them; an assignment or a map
index whose interval is not statically inside the target gets a run-time check
that is part of the action's guard (see docs/language.md, "bounded types").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import errors, ir, macros
from .ir import TBool, TEmptySet, TEnum, TInt, TMap, TNone, TOption, TSet, Ty


@dataclass(frozen=True)
class _Sym:
    kind: ir.NameKind
    ty: Ty
    loc: errors.Loc
    value: int | None = None  # consts only


class _Scope:
    def __init__(self, machine: str) -> None:
        self.machine = machine
        self.globals: dict[str, _Sym] = {}
        self.types: dict[str, tuple[Ty, errors.Loc]] = {}

    def declare(self, name: str, sym: _Sym, what: str) -> None:
        if name in self.globals:
            raise errors.duplicate(sym.loc, name, what, self.globals[name].loc)
        self.globals[name] = sym


def check_machine(m: ir.Machine) -> ir.Machine:
    return _Checker(m).run()


def check_expression(m: ir.Machine, e: ir.Expr) -> ir.Expr:
    """Type-check a state expression (no parameters) in the scope of machine ``m``. Symmetric
    types are plain ranges here: such an expression (a certificate) names concrete values."""
    checker = _Checker(replace(m, types=tuple(replace(t, symmetric=False) for t in m.types)))
    checker.run()
    return checker.expr(e, {})


class _Checker:
    def __init__(self, m: ir.Machine) -> None:
        self.m = m
        self.scope = _Scope(m.name)

    # ------------------------------------------------------------- declarations
    def run(self) -> ir.Machine:
        m = self.m
        consts = []
        for c in m.consts:
            value = self.const_eval(c.value)
            self.scope.declare(c.name, _Sym("const", TInt(value, value), c.loc, value), "constant")
            consts.append((c.name, value))
        for e in m.enums:
            if not e.members:
                raise errors.empty_domain(e.loc, f"enum '{e.name}' has no members")
            self._declare_type(e.name, TEnum(e.name, e.members), e.loc)
            for member in e.members:
                self.scope.declare(member, _Sym("member", TEnum(e.name, e.members), e.loc), "enum member")
        for t in m.types:
            ty = self.resolve_type(t.type, allow_int=False, where=f"type '{t.name}'")
            if t.symmetric:
                if not isinstance(ty, TInt):
                    raise errors.unsupported_type(t.type.loc, f"symmetric type '{t.name}' must be a range, not {ty}")
                ty = TInt(ty.lo, ty.hi, t.name)
            self._declare_type(t.name, ty, t.loc)
        vars_ = []
        for v in m.vars:
            ty = self.resolve_type(v.type, allow_int=False, where=f"variable '{v.name}'")
            self._check_state_type(ty, v)
            init = self.expr(v.init, {}) if v.init is not None else _default_init(ty, v)
            target = ty.value if isinstance(ty, TMap) else ty
            self.assignable(init, target, v.init.loc if v.init is not None else v.loc, f"initial value of '{v.name}'")
            if isinstance(init.ty, TInt) and not ir.fits(init.ty, target):
                raise errors.not_constant(init.loc, f"initial value of '{v.name}' (within {target})")
            self.scope.declare(v.name, _Sym("var", ty, v.loc), "variable")
            vars_.append(replace(v, init=init, ty=ty))
        actions = [self.action(a) for a in m.actions]
        seen_actions: dict[str, errors.Loc] = {}
        for a in m.actions:
            if a.name in seen_actions:
                raise errors.duplicate(a.loc, a.name, "action", seen_actions[a.name])
            seen_actions[a.name] = a.loc
        invariants = []
        for inv in m.invariants:
            if inv.name in self.scope.globals:
                raise errors.duplicate(inv.loc, inv.name, "property", self.scope.globals[inv.name].loc)
            e = self.expr(inv.expr, {})
            self.expect_bool(e, "invariant")
            invariants.append(replace(inv, expr=e))
        liveness = []
        prop_locs = {i.name: i.loc for i in m.invariants}
        for lv in m.liveness:
            if lv.name in prop_locs or lv.name in self.scope.globals or lv.name == ir.DEADLOCK_FREE:
                first = prop_locs.get(lv.name) or (self.scope.globals[lv.name].loc if lv.name in self.scope.globals else lv.loc)
                raise errors.duplicate(lv.loc, lv.name, "property", first)
            prop_locs[lv.name] = lv.loc
            liveness.append(self.liveness(lv))
        for fair in m.fairness:
            if fair.action not in seen_actions:
                raise errors.unknown_name(fair.loc, fair.action, "action", list(seen_actions))
        terminals = []
        for t in m.terminals:
            e = self.expr(t.expr, {})
            self.expect_bool(e, "terminal")
            terminals.append(replace(t, expr=e))
        props = m.property_names
        for ex in m.expects:
            if ex.prop not in props:
                raise errors.unknown_property(ex.loc, ex.prop, props)
        return replace(m, vars=tuple(vars_), actions=tuple(actions), invariants=tuple(invariants),
                       liveness=tuple(liveness), terminals=tuple(terminals), const_values=tuple(consts))

    def liveness(self, lv: ir.Liveness) -> ir.Liveness:
        local: dict[str, _Sym] = {}
        binders = []
        for bd in lv.binders:
            ty = self.finite_scalar(bd.type, f"quantified variable '{bd.name}'")
            local[bd.name] = _Sym("bound", ty, bd.loc)
            binders.append(replace(bd, ty=ty))
        trigger = None
        if lv.trigger is not None:
            trigger = self.expr(lv.trigger, local)
            self.expect_bool(trigger, "the left side of 'leads_to'")
        goal = self.expr(lv.goal, local)
        self.expect_bool(goal, "a liveness goal")
        return replace(lv, binders=tuple(binders), trigger=trigger, goal=goal)

    def _declare_type(self, name: str, ty: Ty, loc: errors.Loc) -> None:
        if name in self.scope.types:
            raise errors.duplicate(loc, name, "type", self.scope.types[name][1])
        self.scope.types[name] = (ty, loc)

    def _check_state_type(self, ty: Ty, v: ir.Var) -> None:
        def scalar_like(t: Ty) -> bool:
            return ir.is_finite_scalar(t) or isinstance(t, TOption | TSet)

        if isinstance(ty, TMap):
            if not ir.is_finite_scalar(ty.key):
                raise errors.unsupported_type(v.type.loc, f"map key of '{v.name}' must be bool, an enum or a range")
            if not scalar_like(ty.value):
                raise errors.unsupported_type(v.type.loc, f"map value of '{v.name}' must be a scalar, option or set (no nested maps)")

    # ------------------------------------------------------------------- types
    def resolve_type(self, t: ir.TypeExpr, *, allow_int: bool, where: str) -> Ty:
        match t:
            case ir.BoolTypeExpr():
                return TBool()
            case ir.IntTypeExpr():
                if not allow_int:
                    raise errors.unbounded(t.loc, where)
                return TInt(None, None)
            case ir.TypeName(name):
                if name in self.scope.types:
                    return self.scope.types[name][0]
                if name == "bool":
                    return TBool()
                raise errors.unknown_name(t.loc, name, "type", list(self.scope.types))
            case ir.RangeTypeExpr(lo, hi):
                a, b = self.const_eval(lo), self.const_eval(hi)
                if a > b:
                    raise errors.empty_domain(t.loc, f"range {a}..{b} in {where}")
                return TInt(a, b)
            case ir.OptionTypeExpr(base):
                bt = self.resolve_type(base, allow_int=allow_int, where=where)
                if not isinstance(bt, TInt | TEnum):
                    raise errors.unsupported_type(t.loc, f"option of {bt} in {where}: only ranges and enums can be optional")
                return TOption(bt)
            case ir.SetTypeExpr(elem):
                et = self.resolve_type(elem, allow_int=allow_int, where=where)
                if not ir.is_finite_scalar(et):
                    raise errors.unsupported_type(t.loc, f"set of {et} in {where}: elements must be bool, an enum or a range")
                return TSet(et)
            case ir.MapTypeExpr(key, value):
                return TMap(self.resolve_type(key, allow_int=allow_int, where=where),
                            self.resolve_type(value, allow_int=allow_int, where=where))
        raise AssertionError(t)

    def finite_scalar(self, t: ir.TypeExpr, where: str) -> Ty:
        ty = self.resolve_type(t, allow_int=False, where=where)
        if not ir.is_finite_scalar(ty):
            raise errors.unsupported_type(t.loc, f"{where} must have type bool, an enum or a range, not {ty}")
        return ty

    # --------------------------------------------------------------- constants
    def const_eval(self, e: ir.Expr) -> int:
        match e:
            case ir.IntLit(v):
                return v
            case ir.Name(n) if n in self.scope.globals and self.scope.globals[n].kind == "const":
                value = self.scope.globals[n].value
                assert value is not None
                return value
            case ir.Name(n) if n not in self.scope.globals:
                raise errors.unknown_name(e.loc, n, "constant", [k for k, s in self.scope.globals.items() if s.kind == "const"])
            case ir.Unary("-", x):
                return -self.const_eval(x)
            case ir.Binary(op, left, right) if op in ("+", "-", "*", "/", "%"):
                a, b = self.const_eval(left), self.const_eval(right)
                if op in ("/", "%") and b <= 0:
                    raise errors.not_constant(right.loc, "a positive divisor")
                return {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0, "%": a % b if b else 0}[op]
            case ir.Call(fn, args):
                values = [self.const_eval(x) for x in args]
                return min(values) if fn == "min" else max(values)
        raise errors.not_constant(e.loc, "this expression")

    # ----------------------------------------------------------------- actions
    def action(self, a: ir.Action) -> ir.Action:
        local: dict[str, _Sym] = {}
        params = []
        for p in a.params:
            if p.name in local:
                raise errors.duplicate(p.loc, p.name, "parameter", local[p.name].loc)
            ty = self.finite_scalar(p.type, f"parameter '{p.name}'")
            local[p.name] = _Sym("param", ty, p.loc)
            params.append(replace(p, ty=ty))
        requires = []
        for r in a.requires:
            e = self.expr(r, local)
            self.expect_bool(e, "requires")
            requires.append(e)
        body = self.stmts(a.body, local, a.name, {})
        return replace(a, params=tuple(params), requires=tuple(requires), body=body)

    def stmts(self, stmts: tuple[ir.Stmt, ...], local: dict[str, _Sym], action: str,
              assigned: dict[str, errors.Loc]) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for s in stmts:
            if isinstance(s, ir.If):
                cond = self.expr(s.cond, local)
                self.expect_bool(cond, "if condition")
                then_assigned = dict(assigned)
                else_assigned = dict(assigned)
                then = self.stmts(s.then, local, action, then_assigned)
                else_ = self.stmts(s.else_, local, action, else_assigned)
                assigned.update(then_assigned)
                assigned.update(else_assigned)
                out.append(replace(s, cond=cond, then=then, else_=else_))
                continue
            if isinstance(s, ir.For):
                out += self.unroll(s, local, action, assigned)
                continue
            out.append(self.assign(s, local, action, assigned))
        return tuple(out)

    def unroll(self, s: ir.For, local: dict[str, _Sym], action: str,
               assigned: dict[str, errors.Loc]) -> tuple[ir.Stmt, ...]:
        """``for q: T do body end`` as one checked copy of ``body`` per value of ``T``.
        Every copy reads the pre-state, so the copies are independent; two copies that
        assign the same cell are the ordinary "assigned twice" error."""
        b = s.binder
        if b.name in local:
            raise errors.duplicate(b.loc, b.name, "loop variable", local[b.name].loc)
        ty = self.finite_scalar(b.type, f"loop variable '{b.name}'")
        if isinstance(ty, TInt) and ty.sym is not None:
            raise errors.asymmetric(b.loc, f"a loop over symmetric type '{ty.sym}' names its values",
                                    hint="state the update per value another way (a parameter, a set)")
        out: list[ir.Stmt] = []
        for v in ir.domain(ty):
            value: ir.Expr
            if isinstance(ty, TEnum):
                value = ir.Name(ty.members[int(v)], b.loc)
            elif isinstance(ty, TBool):
                value = ir.BoolLit(bool(v), b.loc)
            else:
                value = ir.IntLit(int(v), b.loc)
            out += self.stmts(macros.substitute(s.body, {b.name: value}), local, action, assigned)
        return tuple(out)

    def assign(self, s: ir.Assign, local: dict[str, _Sym], action: str,
               assigned: dict[str, errors.Loc]) -> ir.Assign:
        root = s.target if isinstance(s.target, ir.Name) else s.target.base
        if not isinstance(root, ir.Name):
            raise errors.not_assignable(s.loc, "expression", "a computed value")
        sym = local.get(root.id) or self.scope.globals.get(root.id)
        if sym is None:
            raise errors.unknown_name(root.loc, root.id, "variable", self._var_names())
        if sym.kind != "var":
            raise errors.not_assignable(root.loc, root.id, {"param": "parameter", "bound": "bound variable",
                                                            "const": "constant", "member": "enum member"}[sym.kind])
        target = self.expr(s.target, local)
        if isinstance(s.target, ir.Name) and isinstance(sym.ty, TMap):
            raise errors.type_mismatch(s.loc, f"cannot assign the whole map '{root.id}'",
                                       hint=f"assign one entry: {root.id}[k] := value")
        key = _lvalue_key(target)
        if key in assigned:
            raise errors.assigned_twice(s.loc, action, key, assigned[key])
        assigned[key] = s.loc
        value = self.expr(s.value, local)
        assert target.ty is not None
        self.assignable(value, target.ty, s.value.loc, f"'{key}'")
        return replace(s, target=target, value=value)

    def _var_names(self) -> list[str]:
        return [k for k, s in self.scope.globals.items() if s.kind == "var"]

    # ------------------------------------------------------------- expressions
    def expect_bool(self, e: ir.Expr, what: str) -> None:
        if not isinstance(e.ty, TBool):
            raise errors.type_mismatch(e.loc, f"{what} must be bool, not {e.ty}")

    def assignable(self, value: ir.Expr, target: Ty, loc: errors.Loc, what: str) -> None:
        vt = value.ty
        assert vt is not None
        _same_symmetry(loc, vt, target, what)
        if isinstance(target, TInt) and isinstance(vt, TInt):
            if vt.lo is not None and vt.lo == vt.hi and not ir.fits(vt, target):
                raise errors.out_of_range(loc, vt.lo, target.lo or 0, target.hi or 0)
            if _disjoint(vt, target):
                raise errors.type_mismatch(loc, f"{what} has type {target}, but this value is always in {vt}")
            return
        if _join(vt, target) is None or (isinstance(target, TSet) and not isinstance(vt, TSet | TEmptySet)) \
                or (not isinstance(target, TOption) and isinstance(vt, TOption | TNone)):
            hint = None
            if isinstance(vt, TOption):
                hint = "this value may be none; unwrap it with 'x ?? default'"
            raise errors.type_mismatch(loc, f"{what} has type {target}, but the value has type {vt}", hint)

    def expr(self, e: ir.Expr, local: dict[str, _Sym]) -> ir.Expr:
        match e:
            case ir.IntLit(v):
                return replace(e, ty=TInt(v, v))
            case ir.BoolLit():
                return replace(e, ty=TBool())
            case ir.NoneLit():
                return replace(e, ty=TNone())
            case ir.Name(n):
                sym = local.get(n) or self.scope.globals.get(n)
                if sym is None:
                    known = list(local) + list(self.scope.globals)
                    raise errors.unknown_name(e.loc, n, "name", known)
                return replace(e, ty=sym.ty, kind=sym.kind)
            case ir.Index(base, index):
                b = self.expr(base, local)
                if not isinstance(b.ty, TMap):
                    raise errors.type_mismatch(e.loc, f"only maps can be indexed; this has type {b.ty}")
                i = self.expr(index, local)
                self.assignable(i, b.ty.key, index.loc, "the map key")
                return replace(e, base=b, index=i, ty=b.ty.value)
            case ir.SetLit(elems):
                items = [self.expr(x, local) for x in elems]
                ty: Ty | None = TEmptySet()
                for x in items:
                    assert x.ty is not None
                    if not ir.is_finite_scalar(x.ty) and not (isinstance(x.ty, TInt)):
                        raise errors.type_mismatch(x.loc, f"set elements must be scalars, not {x.ty}")
                    if items[0] is not x:
                        _same_symmetry(x.loc, items[0].ty, x.ty, "this set literal")
                    ty = _join(ty, TSet(x.ty)) if ty is not None else None
                    if ty is None:
                        raise errors.type_mismatch(x.loc, "set elements must all have one type")
                if isinstance(ty, TSet) and isinstance(ty.elem, TInt) and not ty.elem.bounded:
                    raise errors.unbounded(e.loc, "a set literal")
                return replace(e, elems=tuple(items), ty=ty)
            case ir.SetComp(bd, cond):
                ty = self.finite_scalar(bd.type, f"set comprehension variable '{bd.name}'")
                c = self.expr(cond, {**local, bd.name: _Sym("bound", ty, bd.loc)})
                self.expect_bool(c, "set comprehension condition")
                return replace(e, binder=replace(bd, ty=ty), cond=c, ty=TSet(ty))
            case ir.Card(x):
                o = self.expr(x, local)
                if isinstance(o.ty, TEmptySet):
                    return replace(e, operand=o, ty=TInt(0, 0))
                if not isinstance(o.ty, TSet):
                    raise errors.type_mismatch(e.loc, f"|...| needs a set, not {o.ty}")
                return replace(e, operand=o, ty=TInt(0, len(ir.domain(o.ty.elem))))
            case ir.Unary("not", x):
                o = self.expr(x, local)
                self.expect_bool(o, "operand of 'not'")
                return replace(e, operand=o, ty=TBool())
            case ir.Unary("-", x):
                o = self.expr(x, local)
                t = self._int(o, "-")
                return replace(e, operand=o, ty=TInt(_neg(t.hi), _neg(t.lo)))
            case ir.Binary(op, left, right):
                return self.binary(e, op, self.expr(left, local), self.expr(right, local))
            case ir.Ite(c, a, b):
                cond, then, else_ = self.expr(c, local), self.expr(a, local), self.expr(b, local)
                self.expect_bool(cond, "if condition")
                _same_symmetry(e.loc, then.ty, else_.ty, "this conditional")
                ty = _join(then.ty, else_.ty)
                if ty is None:
                    raise errors.type_mismatch(e.loc, f"branches have different types: {then.ty} and {else_.ty}")
                return replace(e, cond=cond, then=then, else_=else_, ty=ty)
            case ir.Quant(_, binders, body):
                inner = dict(local)
                bs = []
                for bd in binders:
                    ty = self.finite_scalar(bd.type, f"quantified variable '{bd.name}'")
                    inner[bd.name] = _Sym("bound", ty, bd.loc)
                    bs.append(replace(bd, ty=ty))
                b = self.expr(body, inner)
                self.expect_bool(b, "quantifier body")
                return replace(e, binders=tuple(bs), body=b, ty=TBool())
            case ir.Call(fn, args):
                if len(args) < 2:
                    raise errors.arity(e.loc, fn, 2, len(args))
                xs = [self.expr(a, local) for a in args]
                ts = [self._int(x, fn) for x in xs]
                pick = min if fn == "min" else max
                lo = None if any(t.lo is None for t in ts) else pick(t.lo for t in ts)  # type: ignore[type-var]
                hi = None if any(t.hi is None for t in ts) else pick(t.hi for t in ts)  # type: ignore[type-var]
                return replace(e, args=tuple(xs), ty=TInt(lo, hi))
        raise AssertionError(e)

    def _int(self, e: ir.Expr, op: str) -> TInt:
        if not isinstance(e.ty, TInt):
            hint = "unwrap an optional value with 'x ?? default'" if isinstance(e.ty, TOption) else None
            raise errors.type_mismatch(e.loc, f"'{op}' needs integers, not {e.ty}", hint)
        if e.ty.sym is not None:
            raise errors.asymmetric(e.loc, f"'{op}' on a value of symmetric type '{e.ty.sym}'")
        return e.ty

    def binary(self, e: ir.Binary, op: str, left: ir.Expr, right: ir.Expr) -> ir.Expr:
        lt, rt = left.ty, right.ty
        ty: Ty | None
        if op in ("==", "!=", "in", "subset", "union", "inter", "minus", "??"):
            _same_symmetry(e.loc, lt.base if op == "??" and isinstance(lt, TOption) else lt, rt, f"'{op}'")
        if op in ("and", "or", "implies"):
            self.expect_bool(left, f"operand of '{op}'")
            self.expect_bool(right, f"operand of '{op}'")
            ty = TBool()
        elif op in ("+", "-", "*", "/", "%"):
            a, b = self._int(left, op), self._int(right, op)
            if op in ("/", "%") and not (isinstance(b, TInt) and b.lo is not None and b.lo > 0):
                raise errors.type_mismatch(right.loc, f"the right side of '{op}' must be positive",
                                           hint="divide by a positive constant")
            ty = _arith(op, a, b)
        elif op in ("<", "<=", ">", ">="):
            self._int(left, op)
            self._int(right, op)
            ty = TBool()
        elif op in ("==", "!="):
            if _join(lt, rt) is None or isinstance(lt, TMap) or isinstance(rt, TMap):
                raise errors.type_mismatch(e.loc, f"cannot compare {lt} with {rt}")
            ty = TBool()
        elif op == "in":
            if not isinstance(rt, TSet | TEmptySet):
                raise errors.type_mismatch(right.loc, f"'in' needs a set on the right, not {rt}")
            if isinstance(rt, TSet) and _join(lt, rt.elem) is None:
                raise errors.type_mismatch(e.loc, f"{lt} cannot be an element of {rt}")
            ty = TBool()
        elif op in ("subset", "union", "inter", "minus"):
            if not isinstance(lt, TSet | TEmptySet) or not isinstance(rt, TSet | TEmptySet):
                raise errors.type_mismatch(e.loc, f"'{op}' needs two sets, not {lt} and {rt}")
            joined = _join(lt, rt)
            if joined is None:
                raise errors.type_mismatch(e.loc, f"'{op}' needs sets of one element type, not {lt} and {rt}")
            ty = TBool() if op == "subset" else (lt if op == "minus" else joined)
        elif op == "??":
            if not isinstance(lt, TOption):
                raise errors.type_mismatch(left.loc, f"'??' needs an optional value on the left, not {lt}")
            ty = _join(lt.base, rt)
            if ty is None or isinstance(rt, TOption | TNone):
                raise errors.type_mismatch(right.loc, f"the default of '??' must be a {lt.base}, not {rt}")
        else:
            raise AssertionError(op)
        return replace(e, left=left, right=right, ty=ty)


def _lvalue_key(target: ir.Expr) -> str:
    from .printer import show_expr

    return show_expr(target)


def _symmetric_type(ty: Ty | None) -> str | None:
    """The symmetric type a value of type ``ty`` is, or holds (as an option or set)."""
    match ty:
        case TInt(sym=sym):
            return sym
        case TOption(base):
            return _symmetric_type(base)
        case TSet(elem):
            return _symmetric_type(elem)
    return None


def _same_symmetry(loc: errors.Loc, a: Ty | None, b: Ty | None, what: str) -> None:
    """Values of a symmetric type mix only with values of that type (``none`` and ``{}`` fit anywhere)."""
    if isinstance(a, TNone | TEmptySet) or isinstance(b, TNone | TEmptySet):
        return
    sa, sb = _symmetric_type(a), _symmetric_type(b)
    if sa != sb:
        def say(s: str | None, t: Ty | None) -> str:
            return f"symmetric type '{s}'" if s is not None else f"a plain {t}"
        raise errors.asymmetric(loc, f"{what} mixes {say(sa, a)} with {say(sb, b)}")


def _default_init(ty: Ty, v: ir.Var) -> ir.Expr:
    base = ty.value if isinstance(ty, TMap) else ty
    loc = v.loc
    if isinstance(base, TInt) and base.sym is not None:
        raise errors.asymmetric(v.loc, f"variable '{v.name}' of symmetric type '{base.sym}' has no initial value",
                                hint=f"no value of '{base.sym}' is special: make it optional ({base.sym}?), "
                                     "which starts as none")
    match base:
        case TBool():
            return ir.BoolLit(False, loc, TBool())
        case TInt(lo, _):
            return ir.IntLit(lo or 0, loc, TInt(lo, lo))
        case TEnum(_, members):
            return ir.Name(members[0], loc, base, "member")
        case TOption():
            return ir.NoneLit(loc, TNone())
        case TSet():
            return ir.SetLit((), loc, TEmptySet())
    raise AssertionError(ty)


def _neg(x: int | None) -> int | None:
    return None if x is None else -x


def _disjoint(a: TInt, b: TInt) -> bool:
    return (a.hi is not None and b.lo is not None and a.hi < b.lo) or (
        a.lo is not None and b.hi is not None and a.lo > b.hi)


def _arith(op: str, a: TInt, b: TInt) -> TInt:
    if not (a.bounded and b.bounded):
        return TInt(None, None)
    assert a.lo is not None and a.hi is not None and b.lo is not None and b.hi is not None
    if op == "+":
        return TInt(a.lo + b.lo, a.hi + b.hi)
    if op == "-":
        return TInt(a.lo - b.hi, a.hi - b.lo)
    if op == "*":
        c = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        return TInt(min(c), max(c))
    if op == "/":
        c = [a.lo // b.lo, a.lo // b.hi, a.hi // b.lo, a.hi // b.hi]
        return TInt(min(c), max(c))
    return TInt(0, b.hi - 1)  # '%' by a positive divisor


def _join(a: Ty | None, b: Ty | None) -> Ty | None:
    """The least type holding both, or None when they do not mix."""
    if a is None or b is None:
        return None
    match a, b:
        case TInt(), TInt():
            if a.sym != b.sym:
                return None
            lo = None if a.lo is None or b.lo is None else min(a.lo, b.lo)
            hi = None if a.hi is None or b.hi is None else max(a.hi, b.hi)
            return TInt(lo, hi, a.sym)
        case TNone(), TNone():
            return a
        case TNone(), TOption() | TInt() | TEnum():
            return b if isinstance(b, TOption) else TOption(b)
        case TOption() | TInt() | TEnum(), TNone():
            return _join(b, a)
        case TOption(x), TOption(y):
            j = _join(x, y)
            return TOption(j) if j is not None else None
        case TOption(x), _:
            j = _join(x, b)
            return TOption(j) if j is not None and not isinstance(b, TSet | TMap) else None
        case _, TOption():
            return _join(b, a)
        case TEmptySet(), TEmptySet() | TSet():
            return b
        case TSet(), TEmptySet():
            return a
        case TSet(x), TSet(y):
            j = _join(x, y)
            return TSet(j) if j is not None else None
    return a if a == b else None

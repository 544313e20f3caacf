"""IR -> spec syntax. ``parse(show(m))`` type-checks back to a machine equal to ``m``.

Also used to print values, inferred invariants and lvalues in messages, so that
what a user reads is always spec syntax.
"""

from __future__ import annotations

from . import ir

_PREC = {
    "implies": 1, "or": 2, "and": 3, "not": 4,
    "==": 5, "!=": 5, "<": 5, "<=": 5, ">": 5, ">=": 5, "in": 5, "subset": 5,
    "??": 6, "+": 7, "-": 7, "union": 7, "minus": 7, "*": 8, "/": 8, "%": 8, "inter": 8,
}
_ATOM = 11


def _prec(e: ir.Expr) -> int:
    match e:
        case ir.Binary(op):
            return _PREC[op]
        case ir.Unary("not"):
            return 4
        case ir.Unary("-"):
            return 9
        case ir.Quant():
            return 0
        case ir.Ite():
            return 0  # its else-branch extends to the right: always parenthesise as an operand
        case ir.IntLit(v) if v < 0:
            return 9
    return _ATOM


def show_expr(e: ir.Expr) -> str:
    match e:
        case ir.IntLit(v):
            return str(v)
        case ir.BoolLit(v):
            return "true" if v else "false"
        case ir.NoneLit():
            return "none"
        case ir.Name(n):
            return n
        case ir.Index(base, index):
            return f"{_wrap(base, 10)}[{show_expr(index)}]"
        case ir.SetLit(elems):
            return "{" + ", ".join(show_expr(x) for x in elems) + "}"
        case ir.SetComp(bd, cond):
            return f"{{{bd.name}: {show_type(bd.type)} | {show_expr(cond)}}}"
        case ir.Card(x):
            return f"|{show_expr(x)}|"
        case ir.Unary("not", x):
            return f"not {_wrap(x, 4)}"
        case ir.Unary("-", x):
            return f"-{_wrap(x, 10)}"
        case ir.Binary(op, left, right):
            p = _PREC[op]
            if op == "implies":  # right-associative
                return f"{_wrap(left, p + 1)} implies {_wrap(right, p)}"
            if p == 5 or op == "??":  # non-associative
                return f"{_wrap(left, p + 1)} {op} {_wrap(right, p + 1)}"
            return f"{_wrap(left, p)} {op} {_wrap(right, p + 1)}"
        case ir.Ite(c, a, b):
            return f"if {show_expr(c)} then {show_expr(a)} else {show_expr(b)}"
        case ir.Quant(kind, binders, body):
            bs = ", ".join(f"{b.name}: {show_type(b.type)}" for b in binders)
            return f"{kind} {bs}. {show_expr(body)}"
        case ir.Call(fn, args):
            return f"{fn}(" + ", ".join(show_expr(a) for a in args) + ")"
    raise AssertionError(e)


def _wrap(e: ir.Expr, min_prec: int) -> str:
    s = show_expr(e)
    return f"({s})" if _prec(e) < min_prec else s


def show_type(t: ir.TypeExpr) -> str:
    match t:
        case ir.BoolTypeExpr():
            return "bool"
        case ir.IntTypeExpr():
            return "int"
        case ir.TypeName(n):
            return n
        case ir.RangeTypeExpr(lo, hi):
            return f"{_wrap(lo, 7)}..{_wrap(hi, 7)}"
        case ir.OptionTypeExpr(base):
            return f"{show_type(base)}?"
        case ir.SetTypeExpr(elem):
            return f"set {show_type(elem)}"
        case ir.MapTypeExpr(key, value):
            k = show_type(key)
            return f"{k} -> {show_type(value)}"
    raise AssertionError(t)


def _show_stmts(stmts: tuple[ir.Stmt, ...], indent: str) -> list[str]:
    out: list[str] = []
    for s in stmts:
        if isinstance(s, ir.Assign):
            out.append(f"{indent}{show_expr(s.target)} := {show_expr(s.value)}")
        elif isinstance(s, ir.For):
            out.append(f"{indent}for {s.binder.name}: {show_type(s.binder.type)} do")
            out += _show_stmts(s.body, indent + "  ")
            out.append(f"{indent}end")
        else:
            out.append(f"{indent}if {show_expr(s.cond)} then")
            out += _show_stmts(s.then, indent + "  ")
            if s.else_:
                out.append(f"{indent}else")
                out += _show_stmts(s.else_, indent + "  ")
            out.append(f"{indent}end")
    return out


def show_action(a: ir.Action, indent: str = "  ") -> list[str]:
    params = ""
    if a.params:
        params = "(" + ", ".join(f"{p.name}: {show_type(p.type)}" for p in a.params) + ")"
    policy = "" if a.policy == "raise" else f" otherwise {a.policy}"
    lines = [f"{indent}action {a.name}{params}{policy}"]
    lines += [f"{indent}  requires {show_expr(r)}" for r in a.requires]
    lines += _show_stmts(a.body, indent + "  ")
    return lines


def show_liveness(lv: ir.Liveness) -> str:
    prefix = ""
    if lv.binders:
        prefix = "forall " + ", ".join(f"{b.name}: {show_type(b.type)}" for b in lv.binders) + ". "
    if lv.kind == "eventually":
        return f"{prefix}eventually {_wrap(lv.goal, 1)}"
    if lv.kind == "always_eventually":
        return f"{prefix}always eventually {_wrap(lv.goal, 1)}"
    assert lv.trigger is not None
    return f"{prefix}{_wrap(lv.trigger, 1)} leads_to {_wrap(lv.goal, 1)}"


def show(m: ir.Machine) -> str:
    """A complete machine in spec syntax (a variant is printed with its base merged in)."""
    lines = [f"machine {m.name}"]
    if m.doc:
        lines.append(f'  """{m.doc}"""')
    lines += [f"  const {c.name} = {show_expr(c.value)}" for c in m.consts]
    lines += [f"  enum {e.name} {{ {', '.join(e.members)} }}" for e in m.enums]
    lines += [f"  {'symmetric ' if t.symmetric else ''}type {t.name} = {show_type(t.type)}" for t in m.types]
    lines += [f"  var {v.name}: {show_type(v.type)} = {show_expr(v.init)}" for v in m.vars]
    role = None
    for a in m.actions:
        if a.role != role:
            role = a.role
            lines.append(f"  role {role}")
        lines += show_action(a, "    ")
    lines += ["  strict_bounds"] if m.strict_bounds else []
    lines += [f"  fair {'strong ' if f.strong else ''}{f.action}" for f in m.fairness]
    lines += [f"  invariant {i.name}: {show_expr(i.expr)}" for i in m.invariants]
    lines += [f"  liveness {lv.name}: {show_liveness(lv)}" for lv in m.liveness]
    lines += [f"  terminal {t.name}: {show_expr(t.expr)}" for t in m.terminals]
    lines += [f"  expect {x.prop} {x.verdict}" for x in m.expects]
    return "\n".join(lines) + "\n"

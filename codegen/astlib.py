"""Small ``make_*`` helpers for building Python statements and definitions with ``ast``.

Expression helpers live in ``racefree.spec.pyexpr`` (the interpreter uses them too);
these are the statement-level ones only the generator needs.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from racefree.spec.ir import TBool, TEnum, TInt, TMap, TOption, TSet, Ty
from racefree.spec.pyexpr import make_attr, make_call, make_const, make_name, make_tuple

Stmts = list[ast.stmt]


def make_assign(target: str | ast.expr, value: ast.expr) -> ast.Assign:
    t = ast.Name(target, ast.Store()) if isinstance(target, str) else _store(target)
    return ast.Assign([t], value, lineno=0)


def make_ann(target: str, annotation: ast.expr, value: ast.expr | None = None) -> ast.AnnAssign:
    return ast.AnnAssign(ast.Name(target, ast.Store()), annotation, value, 1)


def _store(e: ast.expr) -> ast.expr:
    if isinstance(e, ast.Attribute):
        return ast.Attribute(e.value, e.attr, ast.Store())
    if isinstance(e, ast.Subscript):
        return ast.Subscript(e.value, e.slice, ast.Store())
    raise AssertionError(e)


def make_if(test: ast.expr, body: Stmts, orelse: Stmts | None = None) -> ast.If:
    return ast.If(test, body or [ast.Pass()], orelse or [])


def make_return(value: ast.expr | None) -> ast.Return:
    return ast.Return(value)


def make_expr(value: ast.expr) -> ast.Expr:
    return ast.Expr(value)


def make_arg(name: str, annotation: ast.expr | None = None) -> ast.arg:
    return ast.arg(name, annotation)


def make_doc(doc: str, indent: int) -> ast.Expr:
    """A docstring whose continuation lines are indented to sit under its opening quotes."""
    pad = " " * indent
    lines = doc.rstrip("\n").split("\n")
    text = lines[0] + "".join("\n" + (pad + line if line else "") for line in lines[1:])
    if len(lines) > 1:
        text += "\n" + pad
    return make_expr(make_const(text))


def make_func(name: str, args: Sequence[ast.arg], body: Stmts, returns: ast.expr | None, *,
              kwonly: Sequence[tuple[ast.arg, ast.expr]] = (), decorators: Sequence[ast.expr] = (),
              doc: str | None = None, is_async: bool = False, indent: int = 8) -> ast.FunctionDef | ast.AsyncFunctionDef:
    if doc:
        body = [make_doc(doc, indent), *body]
    arguments = ast.arguments(posonlyargs=[], args=list(args), vararg=None,
                              kwonlyargs=[a for a, _ in kwonly], kw_defaults=[d for _, d in kwonly],
                              kwarg=None, defaults=[])
    cls = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    return cls(name, arguments, body or [ast.Pass()], list(decorators), returns, lineno=0)


def make_method(name: str, params: Sequence[ast.arg], body: Stmts, returns: ast.expr | None, **kw: object
                ) -> ast.FunctionDef | ast.AsyncFunctionDef:
    return make_func(name, [make_arg("self"), *params], body, returns, **kw)  # type: ignore[arg-type]


def make_class(name: str, bases: Sequence[ast.expr], body: Stmts, doc: str | None = None) -> ast.ClassDef:
    if doc:
        body = [make_doc(doc, 4), *body]
    return ast.ClassDef(name, list(bases), [], body or [ast.Pass()], [])


def make_import_from(module: str, names: Sequence[str]) -> ast.ImportFrom:
    return ast.ImportFrom(module, [ast.alias(n) for n in names], 0)


def make_subscript(value: ast.expr, index: ast.expr) -> ast.Subscript:
    return ast.Subscript(value, index, ast.Load())


def make_union_none(e: ast.expr) -> ast.expr:
    return ast.BinOp(e, ast.BitOr(), make_const(None))


def annotation(ty: Ty, *, map_as: str = "list") -> ast.expr:
    """The Python type of a spec type (enums are the generated ``IntEnum`` classes)."""
    match ty:
        case TBool():
            return make_name("bool")
        case TInt():
            return make_name("int")
        case TEnum(name):
            return make_name(name)
        case TOption(base):
            return make_union_none(annotation(base))
        case TSet(elem):
            return make_subscript(make_name("frozenset"), annotation(elem))
        case TMap(_, value):
            if map_as == "tuple":
                return make_subscript(make_name("tuple"), make_tuple([annotation(value), ast.Constant(...)]))
            return make_subscript(make_name(map_as), annotation(value))
    raise AssertionError(ty)


def type_descriptor(ty: Ty) -> ast.expr:
    """A spec type as the expression that rebuilds it (``TInt(0, 5)``), for the runtime's checks."""
    match ty:
        case TBool():
            return make_call("TBool")
        case TInt(lo, hi):
            return make_call("TInt", make_const(lo), make_const(hi))
        case TEnum(name, members):
            return make_call("TEnum", make_const(name), make_tuple([make_const(m) for m in members]))
        case TOption(base):
            return make_call("TOption", type_descriptor(base))
        case TSet(elem):
            return make_call("TSet", type_descriptor(elem))
        case TMap(key, value):
            return make_call("TMap", type_descriptor(key), type_descriptor(value))
    raise AssertionError(ty)


def value_literal(ty: Ty, v: object) -> ast.expr:
    """An encoded state value as a literal of the generated module (enum members by name)."""
    match ty:
        case TEnum(name, members):
            return make_attr(name, members[v])  # type: ignore[index]
        case TOption(base):
            return make_const(None) if v is None else value_literal(base, v)
        case TSet(elem):
            items = sorted(v)  # type: ignore[call-overload]
            if not items:
                return make_name("EMPTY")
            return make_call("frozenset", make_tuple([value_literal(elem, x) for x in items]))
        case TMap(_, value):
            return ast.List([value_literal(value, x) for x in v], ast.Load())  # type: ignore[attr-defined]
    return make_const(v)


def module_source(module: ast.Module) -> str:
    """Unparsed, with the blank lines PEP 8 asks for around top-level classes and functions."""
    out: list[str] = []
    prev: ast.stmt | None = None
    for stmt in module.body:
        spaced = isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        if prev is not None:
            if spaced or isinstance(prev, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                out.append("\n\n")
            elif type(stmt) is not type(prev) and not isinstance(prev, ast.Import | ast.ImportFrom) or isinstance(prev, ast.Expr):
                out.append("\n")
        out.append(ast.unparse(ast.Module([stmt], [])) + "\n")  # as a module, a docstring stays one
        prev = stmt
    return "".join(out)

"""Spec text -> raw machine declarations (before ``extends`` is merged and types checked).

Lark's LALR parser gives line/column on every token; syntax errors become RF001
diagnostics pointing at the offending token with the tokens that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import errors, ir, macros
from .errors import Loc


@dataclass
class Member:
    """One declaration inside a machine body, as written."""

    kind: str  # const | type | enum | var | action | invariant | expect | drop
    node: Any
    override: bool = False


@dataclass
class Import:
    """``import "other.rf"``: the machines of another file, as bases for this file's variants."""

    path: str  # as written: relative to the importing file
    loc: Loc


@dataclass
class ParsedFile:
    imports: list[Import]
    machines: list[RawMachine]


@dataclass
class RawMachine:
    name: str
    base: str | None
    doc: str | None
    members: list[Member] = field(default_factory=list)
    loc: Loc = errors.NOWHERE


@cache
def _parser() -> Lark:
    grammar = resources.files("racefree.spec").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                start=["start", "expr"], cache=True)


_TOKEN_NAMES = {
    "NAME": "a name", "INT": "an integer", "DOCSTRING": "a docstring", "PATH": "a quoted file path", "$END": "end of file",
    "COLON": "':'", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','", "DOT": "'.'", "VBAR": "'|'", "QMARK": "'?'",
}


def _describe_expected(names: set[str]) -> list[str]:
    out = []
    for n in names:
        if n in _TOKEN_NAMES:
            out.append(_TOKEN_NAMES[n])
        elif n.isupper() and not n.startswith("__"):
            # Anonymous keyword terminals are named after their text, e.g. REQUIRES.
            out.append(f"'{n.lower()}'")
    return sorted(set(out))


def parse_text(text: str, path: str) -> ParsedFile:
    try:
        tree = _parser().parse(text, start="start")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, path) from None
    return _ToRaw(path).transform(tree)


def _syntax_error(exc: UnexpectedInput, text: str, path: str) -> errors.SpecError:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line = text.count("\n") + 1
            loc = Loc(path, line, len(text.rsplit("\n", 1)[-1]) + 1)
            return errors.syntax_error(loc, "end of file", _describe_expected(exc.expected))
        found = f"'{tok}'" if tok.type != "NAME" else f"name '{tok}'"
        return errors.syntax_error(Loc(path, tok.line, tok.column), found, _describe_expected(exc.expected))
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        return errors.syntax_error(Loc(path, exc.line, exc.column), f"character {ch!r}",
                                   _describe_expected(set(exc.allowed or ())))
    if isinstance(exc, UnexpectedEOF):
        line = text.count("\n") + 1
        return errors.syntax_error(Loc(path, line, 1), "end of file", _describe_expected(set(exc.expected)))
    return errors.syntax_error(Loc(path, getattr(exc, "line", 1), getattr(exc, "column", 1)), "input", [])


def _dedent_doc(raw: str) -> str:
    body = raw[3:-3]
    lines = [ln.strip() for ln in body.strip().splitlines()]
    return "\n".join(lines)


class _ToRaw(Transformer):
    """Bottom-up conversion of the Lark tree into IR nodes and raw machines."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _loc(self, meta: Any) -> Loc:
        if getattr(meta, "empty", True):
            return Loc(self.path, 1, 1)
        return Loc(self.path, meta.line, meta.column)

    def _tloc(self, tok: Token) -> Loc:
        return Loc(self.path, tok.line or 1, tok.column or 1)

    # ---- file / machine
    def start(self, items: list[Any]) -> ParsedFile:
        imports = [x for x in items if isinstance(x, Import)]
        return ParsedFile(imports, [x for x in items if isinstance(x, RawMachine)])

    def import_decl(self, items: list[Token]) -> Import:
        return Import(str(items[0])[1:-1], self._tloc(items[0]))

    @v_args(meta=True)
    def machine(self, meta: Any, items: list[Any]) -> RawMachine:
        name = items[0]
        rest = items[1:]
        base = None
        doc = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "NAME":
            base = str(rest[0])
            rest = rest[1:]
        if rest and isinstance(rest[0], Token) and rest[0].type == "DOCSTRING":
            doc = _dedent_doc(str(rest[0]))
            rest = rest[1:]
        members: list[Member] = []
        role = "system"
        for m in rest:
            if isinstance(m, tuple) and m[0] == "role":
                role = m[1]
                continue
            if m.kind == "action":
                m.node = _with_role(m.node, role)
            members.append(m)
        return RawMachine(str(name), base, doc, members, self._tloc(name))

    def role_marker(self, items: list[Token]) -> tuple[str, str]:
        return ("role", str(items[0]))

    def override(self, items: list[Member]) -> Member:
        m = items[0]
        m.override = True
        return m

    def drop(self, items: list[Token]) -> Member:
        kind, name = str(items[1]), items[2]
        return Member("drop", (kind, str(name), self._tloc(name)))

    def terminal(self, items: list[Any]) -> Member:
        return Member("terminal", ir.Terminal(str(items[0]), items[1], self._tloc(items[0])))

    @v_args(meta=True)
    def strict_decl(self, meta: Any, items: list[Any]) -> Member:
        return Member("strict", ir.StrictBounds(self._loc(meta)))

    def fair_decl(self, items: list[Any]) -> Member:
        strong, name = items[1], items[2]
        return Member("fair", ir.Fair(str(name), strong is not None, self._tloc(name)))

    def liveness(self, items: list[Any]) -> Member:
        name, prefix, (kind, trigger, goal) = items
        node = ir.Liveness(str(name), tuple(prefix or ()), kind, trigger, goal, self._tloc(name))
        return Member("liveness", node)

    def live_prefix(self, items: list[Any]) -> tuple[ir.Binder, ...]:
        return tuple(items)

    def eventually(self, items: list[Any]) -> tuple[str, None, ir.Expr]:
        return ("eventually", None, items[0])

    def always_eventually(self, items: list[Any]) -> tuple[str, None, ir.Expr]:
        return ("always_eventually", None, items[0])

    def leads_to(self, items: list[Any]) -> tuple[str, ir.Expr, ir.Expr]:
        return ("leads_to", items[0], items[1])

    # ---- declarations
    def const_decl(self, items: list[Any]) -> Member:
        return Member("const", ir.Const(str(items[0]), items[1], self._tloc(items[0])))

    def type_decl(self, items: list[Any]) -> Member:
        symmetric = len(items) == 3
        name, ty = items[-2:]
        return Member("type", ir.TypeDecl(str(name), ty, self._tloc(name), symmetric))

    def enum_decl(self, items: list[Any]) -> Member:
        members = tuple(str(t) for t in items[1:] if t is not None)
        return Member("enum", ir.EnumDecl(str(items[0]), members, self._tloc(items[0])))

    def var_decl(self, items: list[Any]) -> Member:
        name, type_, init = items
        return Member("var", ir.Var(str(name), type_, init, self._tloc(name)))

    def action(self, items: list[Any]) -> Member:
        name, params, policy, *items_ = items
        body: list[Any] = []
        lets: dict[str, ir.Expr] = {}
        for b in items_:
            b = macros.substitute(b, lets) if lets else b  # a let names an expression for the rest of the action
            if isinstance(b, tuple) and b[0] == "let":
                lets[b[1]] = b[2]
            else:
                body.append(b)
        requires = tuple(b[1] for b in body if isinstance(b, tuple) and b[0] == "requires")
        stmts = tuple(b for b in body if not (isinstance(b, tuple) and b[0] == "requires"))
        node = ir.Action(str(name), "system", tuple(params or ()), requires, stmts,
                         policy or "raise", self._tloc(name))
        return Member("action", node)

    def params(self, items: list[Any]) -> tuple[ir.Param, ...]:
        return tuple(p for p in items if p is not None)

    def param(self, items: list[Any]) -> ir.Param:
        return ir.Param(str(items[0]), items[1], self._tloc(items[0]))

    def policy(self, items: list[Token]) -> str:
        return str(items[1])

    def requires(self, items: list[Any]) -> tuple[str, ir.Expr]:
        return ("requires", items[0])

    def let_decl(self, items: list[Any]) -> tuple[str, str, ir.Expr]:
        return ("let", str(items[0]), items[1])

    def def_decl(self, items: list[Any]) -> Member:
        name, params, body = items
        return Member("def", ir.Def(str(name), tuple(params or ()), body, self._tloc(name)))

    def def_params(self, items: list[Token]) -> tuple[str, ...]:
        return tuple(str(t) for t in items)

    @v_args(meta=True)
    def macro_call(self, meta: Any, items: list[Any]) -> ir.MacroCall:
        return ir.MacroCall(str(items[0]), tuple(items[1:]), self._loc(meta))

    @v_args(meta=True)
    def assign(self, meta: Any, items: list[Any]) -> ir.Assign:
        return ir.Assign(items[0], items[1], self._loc(meta))

    @v_args(meta=True)
    def lvalue(self, meta: Any, items: list[Any]) -> ir.Name | ir.Index:
        name = ir.Name(str(items[0]), self._tloc(items[0]))
        if items[1] is None:
            return name
        return ir.Index(name, items[1], self._loc(meta))

    @v_args(meta=True)
    def if_stmt(self, meta: Any, items: list[Any]) -> ir.If:
        cond, *rest = items
        else_: tuple[ir.Stmt, ...] = ()
        if rest and isinstance(rest[-1], tuple) and rest[-1][:1] == ("else",):
            else_ = rest[-1][1]
            rest = rest[:-1]
        elif rest and rest[-1] is None:
            rest = rest[:-1]
        return ir.If(cond, tuple(rest), else_, self._loc(meta))

    @v_args(meta=True)
    def for_stmt(self, meta: Any, items: list[Any]) -> ir.For:
        return ir.For(items[0], tuple(items[1:]), self._loc(meta))

    def else_block(self, items: list[Any]) -> tuple[str, tuple[ir.Stmt, ...]]:
        return ("else", tuple(items))

    @v_args(meta=True)
    def invariant(self, meta: Any, items: list[Any]) -> Member:
        return Member("invariant", ir.Invariant(str(items[0]), items[1], self._tloc(items[0])))

    def expect(self, items: list[Token]) -> Member:
        return Member("expect", ir.Expect(str(items[1]), str(items[2]), self._tloc(items[1])))  # type: ignore[arg-type]

    # ---- types
    @v_args(meta=True)
    def map_type(self, meta: Any, items: list[Any]) -> ir.MapTypeExpr:
        return ir.MapTypeExpr(items[0], items[1], self._loc(meta))

    @v_args(meta=True)
    def option_type(self, meta: Any, items: list[Any]) -> ir.OptionTypeExpr:
        return ir.OptionTypeExpr(items[0], self._loc(meta))

    @v_args(meta=True)
    def set_type(self, meta: Any, items: list[Any]) -> ir.SetTypeExpr:
        return ir.SetTypeExpr(items[0], self._loc(meta))

    @v_args(meta=True)
    def bool_type(self, meta: Any, items: list[Any]) -> ir.BoolTypeExpr:
        return ir.BoolTypeExpr(self._loc(meta))

    @v_args(meta=True)
    def int_type(self, meta: Any, items: list[Any]) -> ir.IntTypeExpr:
        return ir.IntTypeExpr(self._loc(meta))

    def type_name(self, items: list[Token]) -> ir.TypeName:
        return ir.TypeName(str(items[0]), self._tloc(items[0]))

    @v_args(meta=True)
    def range_type(self, meta: Any, items: list[Any]) -> ir.RangeTypeExpr:
        return ir.RangeTypeExpr(items[0], items[1], self._loc(meta))

    # ---- expressions
    @v_args(meta=True)
    def quant(self, meta: Any, items: list[Any]) -> ir.Quant:
        kind = str(items[0].children[0]) if isinstance(items[0], Tree) else str(items[0])
        binders = tuple(items[1:-1])
        return ir.Quant(kind, binders, items[-1], self._loc(meta))  # type: ignore[arg-type]

    def quant_tok(self, items: list[Token]) -> str:
        return str(items[0])

    def binder(self, items: list[Any]) -> ir.Binder:
        return ir.Binder(str(items[0]), items[1], self._tloc(items[0]))

    def _bin(self, op: str, meta: Any, left: ir.Expr, right: ir.Expr) -> ir.Binary:
        return ir.Binary(op, left, right, self._loc(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def implies_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin("implies", meta, items[0], items[1])

    @v_args(meta=True)
    def or_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin("or", meta, items[0], items[1])

    @v_args(meta=True)
    def and_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin("and", meta, items[0], items[1])

    @v_args(meta=True)
    def not_op(self, meta: Any, items: list[Any]) -> ir.Unary:
        return ir.Unary("not", items[0], self._loc(meta))

    @v_args(meta=True)
    def cmp_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin(items[1], meta, items[0], items[2])

    @v_args(meta=True)
    def coalesce_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin("??", meta, items[0], items[1])

    @v_args(meta=True)
    def bin_op(self, meta: Any, items: list[Any]) -> ir.Binary:
        return self._bin(items[1], meta, items[0], items[2])

    def cmp_tok(self, items: list[Token]) -> str:
        return str(items[0])

    sum_tok = term_tok = fn_tok = cmp_tok

    @v_args(meta=True)
    def neg(self, meta: Any, items: list[Any]) -> ir.Expr:
        if isinstance(items[0], ir.IntLit):
            return ir.IntLit(-items[0].value, self._loc(meta))
        return ir.Unary("-", items[0], self._loc(meta))

    @v_args(meta=True)
    def index(self, meta: Any, items: list[Any]) -> ir.Index:
        return ir.Index(items[0], items[1], self._loc(meta))

    def int_lit(self, items: list[Token]) -> ir.IntLit:
        return ir.IntLit(int(items[0]), self._tloc(items[0]))

    @v_args(meta=True)
    def true_lit(self, meta: Any, items: list[Any]) -> ir.BoolLit:
        return ir.BoolLit(True, self._loc(meta))

    @v_args(meta=True)
    def false_lit(self, meta: Any, items: list[Any]) -> ir.BoolLit:
        return ir.BoolLit(False, self._loc(meta))

    @v_args(meta=True)
    def none_lit(self, meta: Any, items: list[Any]) -> ir.NoneLit:
        return ir.NoneLit(self._loc(meta))

    def name(self, items: list[Token]) -> ir.Name:
        return ir.Name(str(items[0]), self._tloc(items[0]))

    @v_args(meta=True)
    def call(self, meta: Any, items: list[Any]) -> ir.Call:
        return ir.Call(items[0], tuple(items[1:]), self._loc(meta))

    @v_args(meta=True)
    def set_lit(self, meta: Any, items: list[Any]) -> ir.SetLit:
        return ir.SetLit(tuple(e for e in items if e is not None), self._loc(meta))

    @v_args(meta=True)
    def set_comp(self, meta: Any, items: list[Any]) -> ir.SetComp:
        return ir.SetComp(items[0], items[1], self._loc(meta))

    @v_args(meta=True)
    def card(self, meta: Any, items: list[Any]) -> ir.Card:
        return ir.Card(items[0], self._loc(meta))

    @v_args(meta=True)
    def ite(self, meta: Any, items: list[Any]) -> ir.Ite:
        return ir.Ite(items[0], items[1], items[2], self._loc(meta))


def _with_role(action: ir.Action, role: str) -> ir.Action:
    from dataclasses import replace

    return replace(action, role=role)


def parse_expression(text: str, path: str) -> ir.Expr:
    """Parse one expression (used to re-read printed invariants)."""
    try:
        tree = _parser().parse(text, start="expr")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, path) from None
    return _ToRaw(path).transform(tree)

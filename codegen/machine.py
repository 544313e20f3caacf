"""One typed Python module per machine: enums, a snapshot type, the machine class, role views.

The module is thin: per action it holds a public method (lock, policy) and a
``_t_<action>(args..., commit)`` function compiled from the spec; everything
shared (policies, monitor, recorder, snapshot/restore) is in
``racefree.runtime.base``. Expressions go through the same translation as the
interpreter (``racefree.spec.pyexpr``), so the runtime enforces exactly the
semantics the checker proved: simultaneous updates, lazy ``and``/``or``, and a step
that would leave a declared type is not enabled.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from racefree.runtime.base import state_attr
from racefree.spec import ir
from racefree.spec.interp import initial_state
from racefree.spec.ir import TBool, TEnum, TInt, TMap
from racefree.spec.printer import show_expr
from racefree.spec.pyexpr import (
    AT,
    PyExpr,
    key_lo,
    local_name,
    make_attr,
    make_bool,
    make_call,
    make_compare,
    make_const,
    make_name,
    make_not,
    make_tuple,
)

from .astlib import (
    Stmts,
    annotation,
    make_ann,
    make_arg,
    make_assign,
    make_class,
    make_expr,
    make_if,
    make_import_from,
    make_method,
    make_return,
    module_source,
    type_descriptor,
    value_literal,
)

BASE_NAMES = ["BAD_ARGS", "DONE", "EMPTY", "UNDEFINED", "ActionInfo", "MachineBase", "Recorder", "RoleView",
              "Undefined", "chk", "chkset", "co", "fset", "imax", "imin", "ix"]
IR_NAMES = ["TBool", "TEnum", "TInt", "TMap", "TOption", "TSet"]
# Attributes of MachineBase a spec's variable or action must not shadow.
RESERVED = {"monitor", "recorder", "add_listener", "remove_listener", "enabled", "enabled_instances",
            "violated_invariants", "fire", "encoded", "restore", "snapshot", "machine"}


class GenError(Exception):
    """A spec that parses and checks but cannot become a Python module (a name clash)."""


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def member_alias(member: str) -> str:
    """Enum members are bound to module constants: reading ``Enum.MEMBER`` costs ~200 ns, a
    global ~20 ns, and a guard reads several per transition. (Member names are unique per spec.)"""
    return f"_m_{member}"


class _Naming:
    """Generated machines keep state in attributes and use the generated IntEnum members."""

    def var(self, name: str) -> ast.expr:
        return make_attr("self", state_attr(name))

    def member(self, enum: TEnum, index: int) -> ast.expr:
        return make_name(member_alias(enum.members[index]))

    def enum_domain(self, enum: TEnum) -> ast.expr:
        return make_name(enum.name)

    def builtin(self, name: str) -> str:
        # Non-overloaded aliases (runtime/base.py): mypy checks the arguments of an overloaded
        # call once per overload, which is exponential in the nesting of big guards.
        return {"frozenset": "fset", "min": "imin", "max": "imax"}[name]


@dataclass
class _Body:
    """An action body in two passes: compute every new value (reads the old state), then commit."""

    py: PyExpr
    compute: Stmts = field(default_factory=list)
    commit: Stmts = field(default_factory=list)
    n: int = 0

    def stmts(self, stmts: tuple[ir.Stmt, ...]) -> tuple[Stmts, Stmts]:
        compute: Stmts = []
        commit: Stmts = []
        for s in stmts:
            i = self.n
            self.n += 1
            if isinstance(s, ir.If):
                compute.append(make_assign(f"_c{i}", make_call("bool", self.py.expr(s.cond))))
                then_c, then_w = self.stmts(s.then)
                else_c, else_w = self.stmts(s.else_)
                compute.append(make_if(make_name(f"_c{i}"), then_c, else_c))
                if then_w or else_w:
                    commit.append(make_if(make_name(f"_c{i}"), then_w, else_w))
                continue
            target = s.target
            assert target.ty is not None
            compute.append(make_assign(f"_v{i}", self.py.checked(s.value, target.ty)))
            if isinstance(target, ir.Name):
                commit.append(make_assign(make_attr("self", state_attr(target.id)), make_name(f"_v{i}")))
                continue
            assert isinstance(target.base, ir.Name) and isinstance(target.base.ty, TMap)
            key = target.base.ty.key
            k = self.py.expr(target.index)
            lo, n = key_lo(key), len(ir.domain(key))
            pos = ast.BinOp(k, ast.Sub(), make_const(lo)) if lo else k
            compute.append(make_assign(f"_k{i}", pos))
            if not ir.fits(target.index.ty, key):  # type: ignore[arg-type]
                in_range = ast.Compare(make_const(0), [ast.LtE(), ast.Lt()], [make_name(f"_k{i}"), make_const(n)])
                compute.append(make_if(make_not(in_range), [ast.Raise(make_name("Undefined"))]))
            slot = ast.Subscript(make_attr("self", state_attr(target.base.id)), make_name(f"_k{i}"), ast.Load())
            commit.append(make_assign(slot, make_name(f"_v{i}")))
        return compute, commit


def _timeout_kwonly() -> list[tuple[ast.arg, ast.expr]]:
    """``*, timeout: float | None = None`` of a wait-policy action."""
    return [(make_arg("timeout", ast.BinOp(make_name("float"), ast.BitOr(), make_const(None))), make_const(None))]


def _param_check(p: ir.Param) -> ast.expr:
    v = make_name(local_name(p.name))
    match p.ty:
        case TBool():
            return make_call("isinstance", v, make_name("bool"))
        case TInt(lo, hi):
            return ast.Compare(make_const(lo), [ast.LtE(), ast.LtE()], [v, make_const(hi)])
        case TEnum(_, members):
            return ast.Compare(make_const(0), [ast.LtE(), ast.Lt()], [v, make_const(len(members))])
    raise AssertionError(p.ty)


class MachineModule:
    """Builds the module of one typed machine."""

    def __init__(self, m: ir.Machine, spec_ref: str) -> None:
        self.m = m
        self.spec_ref = spec_ref
        self.py = PyExpr(m, _Naming())
        self.cls = m.name
        self.snapshot_cls = f"{m.name}Snapshot"
        self._check_names()

    def _check_names(self) -> None:
        taken: dict[str, str] = {}
        for kind, name in ([("variable", v.name) for v in self.m.vars] + [("action", a.name) for a in self.m.actions]):
            if name in RESERVED or name.startswith("_"):
                raise GenError(f"{self.m.name}: {kind} '{name}' would shadow the runtime's '{name}'; rename it")
            if name in taken:
                raise GenError(f"{self.m.name}: {kind} '{name}' and {taken[name]} '{name}' would both be "
                               "attributes of the generated class; rename one")
            taken[name] = kind

    # ------------------------------------------------------------- module
    def module(self) -> ast.Module:
        body: Stmts = [make_expr(make_const(self._doc()))]
        body.append(make_import_from("__future__", ["annotations"]))
        body.append(ast.Import([ast.alias("enum")]))
        body.append(make_import_from("typing", ["Any", "NamedTuple"]))
        defs: Stmts = [*self._enums(), self._snapshot_class(), *self._action_infos(), self._machine_class(),
                       *self._role_views()]
        used = {n.id for d in defs for n in ast.walk(d) if isinstance(n, ast.Name)}
        body.append(make_import_from("racefree.runtime.base", [n for n in BASE_NAMES if n in used]))
        body.append(make_import_from("racefree.spec.ir", [n for n in IR_NAMES if n in used]))
        exports = [self.cls, self.snapshot_cls, *[e.name for e in self.m.enums], *self._view_names().values()]
        body.append(make_assign("__all__", ast.List([make_const(x) for x in exports], ast.Load())))
        body += defs
        return ast.fix_missing_locations(ast.Module(body, []))

    def _doc(self) -> str:
        lines = [f"{self.m.name}: generated from {self.spec_ref}."]
        if self.m.doc:
            lines += ["", self.m.doc.strip()]
        lines += ["", "Roles and their actions:"]
        for role in self.m.roles:
            acts = ", ".join(a.name for a in self.m.actions if a.role == role)
            lines.append(f"- {role}: {acts} (view: {self._view_names()[role]})")
        return "\n".join(lines) + "\n"

    def _view_names(self) -> dict[str, str]:
        return {r: f"{self.cls}{''.join(w.capitalize() for w in r.split('_'))}View" for r in self.m.roles}

    def _enums(self) -> Stmts:
        out: Stmts = []
        for e in self.m.enums:
            out.append(make_class(e.name, [make_attr("enum", "IntEnum")],
                                  [make_assign(name, make_const(i)) for i, name in enumerate(e.members)]))
            out += [make_assign(member_alias(name), make_attr(e.name, name)) for name in e.members]
        return out

    def _snapshot_class(self) -> ast.ClassDef:
        fields = [make_ann(v.name, annotation(v.ty, map_as="tuple")) for v in self.m.vars]  # type: ignore[arg-type]
        return make_class(self.snapshot_cls, [make_name("NamedTuple")], fields,
                          doc="The machine's state: one field per spec variable; a map is a tuple "
                              "by key position.\n\nEqual to the interpreter's encoded state.")

    def _action_infos(self) -> Stmts:
        out: Stmts = []
        for a in self.m.actions:
            params = make_tuple([make_tuple([make_const(p.name), type_descriptor(p.ty)]) for p in a.params])  # type: ignore[arg-type]
            texts = make_tuple([make_const(show_expr(c)) for c in ir.conjuncts(a.requires)])
            out.append(make_assign(f"_A_{a.name}", make_call("ActionInfo", make_const(a.name), make_const(a.role),
                                                             params, make_const(a.policy), texts)))
        return out

    # ------------------------------------------------------------- the class
    def _machine_class(self) -> ast.ClassDef:
        m = self.m
        body: Stmts = [
            make_assign("MACHINE", make_const(m.name)),
            make_assign("SPEC", make_const(self.spec_ref)),
            make_assign("VARS", make_tuple([make_tuple([make_const(v.name), type_descriptor(v.ty)])  # type: ignore[arg-type]
                                            for v in m.vars])),
            make_assign("ACTIONS", make_tuple([make_name(f"_A_{a.name}") for a in m.actions])),
            make_assign("INVARIANTS", make_tuple([make_const(i.name) for i in m.invariants])),
            make_assign("ENUMS", ast.Dict([make_const(e.name) for e in m.enums], [make_name(e.name) for e in m.enums])),
        ]
        body += [make_ann(state_attr(v.name), annotation(v.ty)) for v in m.vars]  # type: ignore[arg-type]
        body.append(self._init())
        for v in m.vars:
            body.append(make_method(v.name, [], [make_return(
                make_call("tuple", make_attr("self", state_attr(v.name))) if isinstance(v.ty, TMap)
                else make_attr("self", state_attr(v.name)))], annotation(v.ty, map_as="tuple"),  # type: ignore[arg-type]
                decorators=[make_name("property")]))
        body.append(make_method("snapshot", [], [
            ast.With([ast.withitem(make_attr("self", "_lock"))], [make_return(make_call(
                self.snapshot_cls, ast.Starred(make_call(make_attr("self", "_values")), ast.Load())))])],
            make_name(self.snapshot_cls), doc="The current state (consistent: taken under the lock)."))
        for a in m.actions:
            body += self._public(a)
            body.append(self._transition(a))
        for inv in m.invariants:
            body.append(self._invariant(inv))
        return make_class(self.cls, [make_name("MachineBase")], body, doc=(m.doc or m.name).strip())

    def _init(self) -> ast.FunctionDef:
        init = initial_state(self.m)
        kw = [(make_arg("monitor", make_name("bool")), make_const(False)),
              (make_arg("recorder", ast.BinOp(make_name("Recorder"), ast.BitOr(), make_const(None))), make_const(None))]
        body: Stmts = [make_assign(make_attr("self", state_attr(v.name)), value_literal(v.ty, x))  # type: ignore[arg-type]
                       for v, x in zip(self.m.vars, init, strict=True)]
        body.append(make_expr(make_call(make_attr(make_call("super"), "__init__"),
                                        monitor=make_name("monitor"), recorder=make_name("recorder"))))
        return make_method("__init__", [], body, make_const(None), kwonly=kw)  # type: ignore[return-value]

    def _params(self, a: ir.Action, prefix: str = "") -> list[ast.arg]:
        return [make_arg(prefix + p.name, annotation(p.ty)) for p in a.params]  # type: ignore[arg-type]

    def _public(self, a: ir.Action) -> Stmts:
        info = make_name(f"_A_{a.name}")
        args = make_tuple([make_name(p.name) for p in a.params])
        guard = " and ".join(show_expr(c) for c in a.requires) or "true"
        doc = f"Role {a.role}. Requires: {guard if len(guard) <= 300 else guard[:297] + '...'}\n\n"
        if a.policy == "wait":
            timeout = _timeout_kwonly()
            doc += "Blocks until enabled (GuardTimeout after ``timeout`` seconds)."
            sync = make_method(a.name, self._params(a), [make_return(make_call(
                make_attr("self", "_wait"), info, args, make_name("timeout")))], make_name("bool"), kwonly=timeout,
                doc=doc)
            coro = make_method(f"{a.name}_async", self._params(a), [make_return(ast.Await(make_call(
                make_attr("self", "_wait_async"), info, args, make_name("timeout"))))], make_name("bool"),
                kwonly=timeout, doc=doc.replace("Blocks", "Awaits"), is_async=True)
            return [sync, coro]
        doc += ("Returns False (and logs) when not enabled." if a.policy == "ignore"
                else "Raises GuardRejected when not enabled.")
        done = make_compare(make_name("code"), ast.Eq(), make_name("DONE"))
        locked: Stmts = [
            make_assign("code", make_call(make_attr("self", f"_t_{a.name}"),
                                          *[make_name(p.name) for p in a.params], make_const(True))),
            make_if(make_bool(ast.And(), done, make_compare(make_attr("self", "_on_commit"), ast.IsNot(),
                                                            make_const(None))),
                    [make_expr(make_call(make_attr("self", "_on_commit"), info, args))]),
        ]
        # acquire/try/finally rather than ``with``: the same lock discipline at half the cost
        # (``with`` looks up and calls __enter__/__exit__; ~0.25 us of a ~1.2 us transition here).
        body: Stmts = [
            make_expr(make_call(make_attr(make_attr("self", "_lock"), "acquire"))),
            ast.Try(locked, [], [], [make_expr(make_call(make_attr(make_attr("self", "_lock"), "release")))]),
            make_if(done, [make_if(make_attr("self", "_listeners"),
                                   [make_expr(make_call(make_attr("self", "_after"), info, args))]),
                           make_return(make_const(True))]),
            make_return(make_call(make_attr("self", "_refused"), info, args, make_name("code"))),
        ]
        return [make_method(a.name, self._params(a), body, make_name("bool"), doc=doc)]

    def _transition(self, a: ir.Action) -> ast.FunctionDef:
        """``_t_<action>``: the guard and update; commits only when asked (queries do not).

        A set comprehension, cardinality or quantifier that reads only the state is computed once
        per call and kept in ``_ms`` (as the interpreter does): expanded ``def``s repeat them, and
        at a deployment's sizes (8 pipelines, 64 GPUs) recomputing them is what a guard costs."""
        self.py.memo = {}
        body: Stmts = []
        if a.params:
            check = [_param_check(p) for p in a.params]
            body.append(make_if(make_not(check[0] if len(check) == 1 else make_bool(ast.And(), *check)),
                                [make_return(make_name("BAD_ARGS"))]))
        tried: Stmts = [make_if(make_not(self.py.expr(c)), [make_return(make_const(i))])
                        for i, c in enumerate(ir.conjuncts(a.requires))]
        compute, commit = _Body(self.py).stmts(a.body)
        tried += compute
        if tried:
            body.append(ast.Try(tried, [ast.ExceptHandler(make_name("Undefined"), None,
                                                          [make_return(make_name("UNDEFINED"))])], [], []))
        if commit:
            body.append(make_if(make_name("commit"), commit))
        body.append(make_return(make_name("DONE")))
        if self.py.memo:
            memo = ast.AnnAssign(ast.Name("_ms", ast.Store(), **AT), ast.parse("dict[Any, Any]", mode="eval").body,
                                 ast.Dict([], [], **AT), simple=1, **AT)
            body.insert(1 if a.params else 0, memo)
        self.py.memo = None
        params = [make_arg(local_name(p.name), annotation(p.ty)) for p in a.params]  # type: ignore[arg-type]
        return make_method(f"_t_{a.name}", [*params, make_arg("commit", make_name("bool"))], body,
                           make_name("int"))  # type: ignore[return-value]

    def _invariant(self, inv: ir.Invariant) -> ast.FunctionDef:
        body: Stmts = [ast.Try([make_return(make_call("bool", self.py.expr(inv.expr)))],
                               [ast.ExceptHandler(make_name("Undefined"), None, [make_return(make_const(False))])],
                               [], [])]
        return make_method(f"_inv_{inv.name}", [], body, make_name("bool"),  # type: ignore[return-value]
                           doc=f"invariant {inv.name}")

    def _role_views(self) -> Stmts:
        out: Stmts = []
        for role, cls in self._view_names().items():
            methods: Stmts = []
            for a in self.m.actions:
                if a.role != role:
                    continue
                call_args = [make_name(p.name) for p in a.params]
                kwonly: list[tuple[ast.arg, ast.expr]] = []
                kw: dict[str, ast.expr] = {}
                if a.policy == "wait":
                    kwonly = _timeout_kwonly()
                    kw = {"timeout": make_name("timeout")}
                target = make_attr(make_attr("self", "_machine"), a.name)
                methods.append(make_method(a.name, self._params(a), [make_return(make_call(target, *call_args, **kw))],
                                           make_name("bool"), kwonly=kwonly))
                if a.policy == "wait":
                    target = make_attr(make_attr("self", "_machine"), f"{a.name}_async")
                    methods.append(make_method(f"{a.name}_async", self._params(a), [make_return(ast.Await(
                        make_call(target, *call_args, **kw)))], make_name("bool"), kwonly=kwonly, is_async=True))
            base = ast.Subscript(make_name("RoleView"), make_name(self.cls), ast.Load())
            out.append(make_class(cls, [base], methods, doc=f"The {role} role of {self.cls}: only its actions."))
        return out


def machine_source(m: ir.Machine, spec_ref: str) -> str:
    return module_source(MachineModule(m, spec_ref).module())



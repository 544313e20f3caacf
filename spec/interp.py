"""Reference semantics: the IR compiled to plain Python functions over encoded states.

This is the oracle the Z3 engines are checked against: counterexamples are
replayed here, and the explicit engine enumerates states with it. It shares
nothing with the Z3 encoder except the IR and the value encoding
(``values.py``).

Semantics (the same in every engine):
- updates are simultaneous: every right-hand side reads the old state; when two
  entries of one map coincide at run time the later statement wins;
- an action is enabled when all its ``requires`` hold *and* it is well defined:
  every map key it evaluates lies in the map's domain and every value it
  assigns lies in the target's declared type. Bounded types are part of the
  guard, so a step can never leave the finite instance;
- ``and``/``or``/``implies``/``if`` evaluate lazily, everything else eagerly
  (including all instances of a quantifier), which fixes when a read is "evaluated";
- an invariant that is not well defined in a state counts as violated.

Each action is compiled (via Python source built from the IR, once per machine)
into ``step(state, *args) -> state | None`` and ``successors(state)``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import ir
from .ir import TEnum, TMap, Ty
from .pyexpr import HELPERS, PyExpr, key_lo, make_call, make_const, make_name, may_be_undefined, paused_gc
from .values import State


class _InterpNaming:
    """State variables are the unpacked locals ``v_<name>``; enum members are their indices."""

    def var(self, name: str) -> ast.expr:
        return make_name(f"v_{name}")

    def member(self, enum: TEnum, index: int) -> ast.expr:
        return make_const(index)

    def enum_domain(self, enum: TEnum) -> ast.expr:
        return make_call("range", make_const(len(enum.members)))

    def builtin(self, name: str) -> str:
        return name


_RUNTIME = {**HELPERS, "EMPTY": frozenset()}


class _PySource:
    """Expression "source" for the interpreter's function templates.

    The shared translation yields ``ast`` nodes; rather than unparse them (slow for the big
    expanded guards of gpu_alloc), each becomes a placeholder name ``__h<n>`` in the template
    text, and ``compile`` puts the nodes back into the parsed template (``_Fill``).
    """

    def __init__(self, m: ir.Machine) -> None:
        self._py = PyExpr(m, _InterpNaming())
        self.holes: list[ast.expr] = []

    def _hole(self, node: ast.expr) -> str:
        self.holes.append(node)
        return f"__h{len(self.holes) - 1}"

    def run(self, src: str, where: str, name: str) -> Any:
        """Compile a template with its holes filled and return the function it defines."""
        tree = _Fill(self.holes).visit(ast.parse(src))
        ns = dict(_RUNTIME)
        exec(compile(tree, f"<racefree:{where}>", "exec"), ns)  # holes carry their locations (pyexpr.AT)
        return ns[name]

    @property
    def memo(self) -> dict[ir.Expr, int] | None:
        return self._py.memo

    @memo.setter
    def memo(self, value: dict[ir.Expr, int] | None) -> None:
        self._py.memo = value

    def start_function(self) -> None:
        self._py.memo = {}

    def expr(self, e: ir.Expr) -> str:
        return self._hole(self._py.expr(e))

    def checked(self, value: ir.Expr, target: Ty) -> str:
        return self._hole(self._py.checked(value, target))

    def domain(self, ty: Ty) -> str:
        return self._hole(self._py.domain(ty))


def initial_state(m: ir.Machine, src: _PySource | None = None) -> State:
    """The encoded initial state (var initialisers are constant expressions)."""
    src = src or _PySource(m)
    src.memo = None  # initial values are evaluated once: nothing to share
    values = []
    for v in m.vars:
        x = src.run(f"def init():\n    return {src.expr(v.init)}\n", f"{m.name}:init", "init")()
        if isinstance(v.ty, TMap):
            x = tuple(x for _ in ir.domain(v.ty.key))
        values.append(x)
    return tuple(values)


class _Fill(ast.NodeTransformer):
    def __init__(self, holes: list[ast.expr]) -> None:
        self.holes = holes

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.holes[int(node.id[3:])] if node.id.startswith("__h") else node


@dataclass(frozen=True)
class CompiledAction:
    action: ir.Action
    step: Callable[..., State | None]
    successors: Callable[[State], list[tuple[tuple[Any, ...], State]]]
    param_domains: tuple[tuple[Any, ...], ...]
    # The argument tuples for which the action is disabled by a type bound alone in a state (a key
    # or an assigned value out of its declared range, not a false ``requires``); None when the
    # action can never leave a bound, which is most actions.
    out_of_bounds: Callable[[State], list[tuple[Any, ...]]] | None = None


class Interpreter:
    """Executable semantics of one typed machine."""

    def __init__(self, m: ir.Machine) -> None:
        self.machine = m
        self._src = _PySource(m)
        self.var_index = {v.name: i for i, v in enumerate(m.vars)}
        with paused_gc():
            self.init = self._initial_state()
            self.actions = {a.name: self._compile_action(a) for a in m.actions}
            self.invariants = {i.name: self._compile_pred(i.expr, f"inv_{i.name}") for i in m.invariants}
            self.terminals = [self._compile_pred(t.expr, f"terminal_{t.name}") for t in m.terminals]

    # ----------------------------------------------------------------- public
    def step(self, state: State, action: str, args: tuple[Any, ...]) -> State | None:
        """The successor of ``state`` under ``action(args)``, or None when it is not enabled."""
        return self.actions[action].step(state, *args)

    def successors(self, state: State) -> Iterator[tuple[str, tuple[Any, ...], State]]:
        for name, ca in self.actions.items():
            for args, nxt in ca.successors(state):
                yield name, args, nxt

    def enabled_any(self, state: State) -> bool:
        return any(ca.successors(state) for ca in self.actions.values())

    def out_of_bounds(self, state: State) -> list[tuple[str, tuple[Any, ...]]]:
        """The ground actions disabled in ``state`` only because a key or a value would leave its declared type."""
        return [(name, args) for name, ca in self.actions.items() if ca.out_of_bounds
                for args in ca.out_of_bounds(state)]

    def in_bounds(self, state: State) -> bool:
        """The built-in property ``in_bounds`` (``strict_bounds``): no action is blocked by a type bound."""
        return not any(ca.out_of_bounds(state) for ca in self.actions.values() if ca.out_of_bounds)

    def deadlock_free(self, state: State) -> bool:
        """Some action is enabled, or a declared terminal condition holds."""
        return self.enabled_any(state) or any(t(state) for t in self.terminals)

    def eval_pred(self, e: ir.Expr) -> Callable[[State], bool]:
        """Compile any typed boolean state expression (used to re-check printed invariants)."""
        return self._compile_pred(e, "pred")

    def param_pred(self, e: ir.Expr, params: list[str]) -> Callable[..., bool]:
        """A boolean expression over the state and named parameters: ``f(state, *args)``."""
        return self._compile_pred(e, "pred", params)

    def live_preds(self, lv: ir.Liveness, binding: dict[str, Any]) -> tuple[Callable[[State], bool], Callable[[State], bool]]:
        """(trigger, goal) of one instance of a liveness property, as state predicates."""
        names = [b.name for b in lv.binders]
        goal = self._compile_pred(lv.goal, "goal", names)
        trig = self._compile_pred(lv.trigger, "trigger", names) if lv.trigger is not None else None
        args = tuple(binding[n] for n in names)
        return ((lambda st: True) if trig is None else (lambda st: trig(st, *args))), (lambda st: goal(st, *args))

    # --------------------------------------------------------------- compiling
    def _unpack(self) -> str:
        """The prologue of every generated function: unpack the state, start the memo."""
        self._src.start_function()
        names = [f"v_{v.name}" for v in self.machine.vars]
        if not names:
            return "    _ms = {}"
        return f"    {', '.join(names)}, = st\n    _ms = {{}}"

    def _exec(self, src: str, name: str) -> Any:
        return self._src.run(src, f"{self.machine.name}:{name}", name)

    def _initial_state(self) -> State:
        return initial_state(self.machine, self._src)

    def _compile_pred(self, e: ir.Expr, name: str, params: list[str] = ()) -> Callable[..., bool]:  # type: ignore[assignment]
        extra = "".join(f", p_{p}" for p in params)
        src = (f"def {name}(st{extra}):\n{self._unpack()}\n    try:\n        return bool({self._src.expr(e)})\n"
               f"    except Undefined:\n        return False\n")
        return self._exec(src, name)

    def _stmts(self, stmts: tuple[ir.Stmt, ...], indent: str, out: list[str]) -> None:
        for s in stmts:
            if isinstance(s, ir.If):
                out.append(f"{indent}if {self._src.expr(s.cond)}:")
                self._stmts(s.then, indent + "    ", out)
                out.append(f"{indent}    pass")
                if s.else_:
                    out.append(f"{indent}else:")
                    self._stmts(s.else_, indent + "    ", out)
                continue
            target = s.target
            assert target.ty is not None
            value = self._src.checked(s.value, target.ty)
            if isinstance(target, ir.Name):
                out.append(f"{indent}n_{target.id} = {value}")
            else:
                assert isinstance(target.base, ir.Name) and isinstance(target.base.ty, TMap)
                key = target.base.ty.key
                n = len(ir.domain(key))
                idx = self._src.expr(target.index)
                name = target.base.id
                if ir.fits(target.index.ty, key):  # type: ignore[arg-type]
                    out.append(f"{indent}_k = {idx} - {key_lo(key)}" if key_lo(key) else f"{indent}_k = {idx}")
                else:
                    out.append(f"{indent}_k = {idx} - {key_lo(key)}")
                    out.append(f"{indent}if not 0 <= _k < {n}: raise Undefined")
                # Later statements see the old state (v_*); n_* accumulates the new one.
                out.append(f"{indent}n_{name} = n_{name}[:_k] + ({value},) + n_{name}[_k + 1:]")

    def _assigned(self, stmts: tuple[ir.Stmt, ...], acc: set[str]) -> set[str]:
        for s in stmts:
            if isinstance(s, ir.If):
                self._assigned(s.then, acc)
                self._assigned(s.else_, acc)
            else:
                acc.add(s.target.id if isinstance(s.target, ir.Name) else s.target.base.id)  # type: ignore[union-attr]
        return acc

    def _body(self, a: ir.Action, indent: str, on_disabled: str, on_enabled: str,
              on_undefined: str | None = None) -> list[str]:
        guard = " and ".join(f"{self._src.expr(r)}" for r in a.requires) or "True"
        assigned = self._assigned(a.body, set())
        lines = [f"{indent}try:", f"{indent}    if not ({guard}): {on_disabled}"]
        for name in sorted(assigned):
            lines.append(f"{indent}    n_{name} = v_{name}")
        self._stmts(a.body, indent + "    ", lines)
        parts = []
        for v in self.machine.vars:
            parts.append(f"n_{v.name}" if v.name in assigned else f"v_{v.name}")
        new = "(" + "".join(p + ", " for p in parts) + ")"
        lines.append(f"{indent}    {on_enabled.format(new=new)}")
        lines.append(f"{indent}except Undefined:")
        lines.append(f"{indent}    {on_undefined or on_disabled}")
        return lines

    def _compile_action(self, a: ir.Action) -> CompiledAction:
        params = [f"p_{p.name}" for p in a.params]
        first_hole = len(self._src.holes)
        step_src = "\n".join([f"def step(st{''.join(', ' + p for p in params)}):", self._unpack(),
                              *self._body(a, "    ", "return None", "return {new}")]) + "\n"
        loops, indent = [], "    "
        for p in a.params:
            loops.append(f"{indent}for p_{p.name} in {self._src.domain(p.ty)}:")  # type: ignore[arg-type]
            indent += "    "
        args = "(" + "".join(p + ", " for p in params) + ")"
        cont = "continue" if a.params else "return out"
        succ_src = "\n".join(["def successors(st):", self._unpack(), "    out = []", *loops,
                              *self._body(a, indent, cont, f"out.append(({args}, {{new}}))"),
                              "    return out"]) + "\n"
        domains = tuple(ir.domain(p.ty) for p in a.params)  # type: ignore[arg-type]
        blocked = None
        if "raise Undefined" in succ_src or any(may_be_undefined(h) for h in self._src.holes[first_hole:]):
            nxt = "continue" if a.params else "return out"
            blocked_src = "\n".join(["def out_of_bounds(st):", self._unpack(), "    out = []", *loops,
                                     *self._body(a, indent, nxt, nxt, f"out.append({args})"),
                                     "    return out"]) + "\n"
            blocked = self._exec(blocked_src, "out_of_bounds")
        return CompiledAction(a, self._exec(step_src, "step"), self._exec(succ_src, "successors"), domains, blocked)


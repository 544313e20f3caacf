"""Shared Hypothesis strategies over the IR (untyped expressions in a fixed scope)."""

from __future__ import annotations

from hypothesis import strategies as st
from racefree.spec import ir

INT_NAMES = ["x", "y", "N"]
SET_NAMES = ["members"]
BOOL_NAMES = ["flag"]
ENUM_MEMBERS = ["IDLE", "BUSY"]

SCOPE = """
machine Scope
  const N = 3
  type Id = 0..N
  enum Phase { IDLE, BUSY }
  var x: Id = 0
  var y: Id = 0
  var flag: bool = false
  var members: set Id = {}
  var phase: Id -> Phase = IDLE
  var holder: Id? = none
"""


def int_exprs() -> st.SearchStrategy[ir.Expr]:
    leaves = st.one_of(st.integers(0, 3).map(ir.IntLit), st.sampled_from(INT_NAMES).map(ir.Name),
                       st.just(ir.Binary("??", ir.Name("holder"), ir.IntLit(0))))

    def extend(inner: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[ir.Expr]:
        return st.one_of(
            st.builds(ir.Binary, st.sampled_from(["+", "-", "*"]), inner, inner),
            st.builds(lambda a: ir.Binary("%", a, ir.IntLit(2)), inner),
            st.builds(lambda a, b: ir.Call("min", (a, b)), inner, inner),
            st.builds(lambda a: ir.Card(ir.Binary("union", ir.Name("members"), ir.SetLit((a,)))), inner),
        )

    return st.recursive(leaves, extend, max_leaves=6)


def bool_exprs() -> st.SearchStrategy[ir.Expr]:
    ints = int_exprs()
    leaves = st.one_of(
        st.booleans().map(ir.BoolLit),
        st.sampled_from(BOOL_NAMES).map(ir.Name),
        st.builds(ir.Binary, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), ints, ints),
        st.builds(lambda a: ir.Binary("in", a, ir.Name("members")), ints),
        st.builds(lambda m: ir.Binary("==", ir.Index(ir.Name("phase"), ir.Name("x")), ir.Name(m)),
                  st.sampled_from(ENUM_MEMBERS)),
        st.just(ir.Binary("==", ir.Name("holder"), ir.NoneLit())),
    )

    def extend(inner: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[ir.Expr]:
        return st.one_of(
            st.builds(ir.Binary, st.sampled_from(["and", "or", "implies"]), inner, inner),
            st.builds(lambda a: ir.Unary("not", a), inner),
            st.builds(ir.Ite, inner, inner, inner),
            st.builds(lambda b: ir.Quant("forall", (ir.Binder("i", ir.TypeName("Id")),),
                                         ir.Binary("or", b, ir.Binary("==", ir.Name("i"), ir.Name("x")))), inner),
        )

    return st.recursive(leaves, extend, max_leaves=8)

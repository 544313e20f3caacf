"""The printer and parser are inverses: parse(show(m)) == m, for machines and expressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from racefree.spec import ir
from racefree.spec.checker import check_expression
from racefree.spec.loader import load_file, load_text
from racefree.spec.parser import parse_expression
from racefree.spec.printer import show, show_expr

from .conftest import EXAMPLES, SPECS
from .strategies import SCOPE, bool_exprs, int_exprs

SPEC_FILES = sorted(EXAMPLES.glob("*.rf")) + sorted((EXAMPLES.parent / "protocols").glob("*.rf")) + sorted(
    (SPECS / "ok").glob("*.rf")) + sorted((SPECS / "counterexample").glob("*.rf"))


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_machine_roundtrip(path: Path) -> None:
    for m in load_file(path).machines:
        again = load_text(show(m), "<shown>").machines
        assert again == (m,)


@settings(max_examples=300, deadline=None)
@given(bool_exprs())
def test_bool_expression_roundtrip(e: ir.Expr) -> None:
    assert parse_expression(show_expr(e), "<e>") == e


@settings(max_examples=200, deadline=None)
@given(int_exprs())
def test_int_expression_roundtrip(e: ir.Expr) -> None:
    assert parse_expression(show_expr(e), "<e>") == e


@settings(max_examples=100, deadline=None)
@given(bool_exprs())
def test_generated_expressions_type_check(e: ir.Expr) -> None:
    m = load_text(SCOPE).machines[0]
    typed = check_expression(m, e)
    assert isinstance(typed.ty, ir.TBool)

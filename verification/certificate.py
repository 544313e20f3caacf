"""Proof certificates: an inductive invariant printed in spec syntax and re-checked independently.

The invariant Spacer found (over cells) is printed as a spec expression. That
*text* is then parsed and type-checked against the machine, encoded afresh, and
three queries are posed on the whole machine (not the slices):

    init => C          C & T => C'          C => P

with C = printed invariant & type bounds. Only when all three are UNSAT is the
proof reported. So the printer, the slicing and Spacer are all re-verified.
"""

from __future__ import annotations

import re
from functools import cached_property
from itertools import product

import z3
from racefree.spec import ir
from racefree.spec.checker import check_expression
from racefree.spec.parser import parse_expression
from racefree.spec.printer import show_type
from racefree.spec.values import show_scalar

from .encode import NONE, Encoding
from .limits import Limits

_HOLE = "\x00"  # where a map key stood in a template
_INDEXED = re.compile(r"\b([A-Za-z_][A-Za-z_0-9]*)\[([^\[\]]+)\]")  # a map read with a printed key: name[key]


class CertificateRejected(AssertionError):
    """A candidate invariant failed its re-check: a bug in racefree, never reported as a proof."""


def to_spec(e: z3.ExprRef, enc: Encoding) -> str:
    """A Z3 formula over the base frame, as spec syntax.

    Canonical: the operands of every ``and``/``or`` are sorted by their text (Z3 orders them by
    its internal term ids, which depend on what else ran in the process), and a conjunction or
    disjunction of one template at every key of a map's key type is printed once, quantified
    (``forall s: Slot. ...``). The text is what gets re-checked, so folding cannot hide an error.
    """
    index = {c.name: i for i, c in enumerate(enc.cells)}
    return _Printer(enc, index).top(e)


class _Printer:
    def __init__(self, enc: Encoding, index: dict[str, int]) -> None:
        self.enc = enc
        self.index = index

    def top(self, e: z3.ExprRef) -> str:
        parts = e.children() if z3.is_and(e) else [e]
        texts = [self._disjunction(c, len(parts) > 1) for c in parts]
        return "\n  and ".join(self._fold(texts, "forall") if len(parts) > 1 else texts)

    def _disjunction(self, e: z3.ExprRef, operand: bool) -> str:
        """One conjunct of the certificate; a disjunction's operands folded into ``exists`` where uniform."""
        if not z3.is_or(e) or all(z3.is_not(c) for c in e.children()):
            return self.p(e, 3 if operand else 0)
        text = " or ".join(self._fold([self.p(c, 3) for c in e.children()], "exists"))
        return f"({text})" if operand and len(e.children()) > 1 and " or " in text else text

    def _fold(self, texts: list[str], quant: str) -> list[str]:
        """Sorted, deduplicated operands; those that differ only in the key of every map they read,
        all of one key type, become one quantified operand when they cover the whole key type."""
        groups: dict[tuple[str, str], dict[str, str]] = {}
        out: list[str] = []
        for t in sorted(set(texts)):
            shape = self._template(t)
            if shape is None:
                out.append(t)
            else:
                groups.setdefault(shape[:2], {})[shape[2]] = t
        for (template, key_type), by_key in groups.items():
            if len(by_key) > 1 and set(by_key) == set(self.key_domains[key_type]):
                binder = self._binder(key_type)
                out.append(f"({quant} {binder}: {key_type}. {template.replace(_HOLE, binder)})")
            else:
                out += by_key.values()
        return sorted(out)

    @cached_property
    def map_keys(self) -> dict[str, str]:
        """Map variable -> its key type as written in the spec (``Slot``, ``0..S-1``)."""
        return {v.name: show_type(v.type.key) for v in self.enc.machine.vars  # type: ignore[union-attr]
                if isinstance(v.ty, ir.TMap) and isinstance(v.type, ir.MapTypeExpr)}

    @cached_property
    def key_domains(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for v in self.enc.machine.vars:
            if v.name in self.map_keys:
                out[self.map_keys[v.name]] = [show_scalar(v.ty.key, k) for k in ir.domain(v.ty.key)]  # type: ignore[union-attr]
        return out

    def _template(self, text: str) -> tuple[str, str, str] | None:
        """(text with every map key replaced by a hole, the key type, the key) when all map reads in
        ``text`` use one key of one key type; None otherwise."""
        keys = set()
        types = set()
        for m in _INDEXED.finditer(text):
            if m.group(1) not in self.map_keys:
                return None
            keys.add(m.group(2))
            types.add(self.map_keys[m.group(1)])
        if len(keys) != 1 or len(types) != 1:
            return None
        (key,), (key_type,) = keys, types
        return _INDEXED.sub(lambda m: f"{m.group(1)}[{_HOLE}]", text), key_type, key

    def _binder(self, key_type: str) -> str:
        m = self.enc.machine
        taken = ({v.name for v in m.vars} | {c.name for c in m.consts} | {t.name for t in m.types}
                 | {x for e in m.enums for x in (e.name, *e.members)})
        base = key_type[0].lower() if key_type[0].isalpha() else "k"
        return next(n for n in [base, *(f"{base}{i}" for i in range(1, 100))] if n not in taken)

    def p(self, e: z3.ExprRef, ctx: int) -> str:
        """Print with parentheses when the operator binds looser than ``ctx`` (printer.py precedences)."""
        if z3.is_true(e):
            return "true"
        if z3.is_false(e):
            return "false"
        if z3.is_not(e) and z3.is_and(e.arg(0)):
            return self.wrap(f"not ({self.p(e.arg(0), 0)})", 4, ctx)
        if z3.is_or(e) and all(z3.is_not(c) for c in e.children()):
            inner = " and ".join(sorted({self.p(c.arg(0), 4) for c in e.children()}))
            return self.wrap(f"not ({inner})", 4, ctx)
        if z3.is_and(e):
            return self.wrap(" and ".join(sorted({self.p(c, 4) for c in e.children()})), 3, ctx)
        if z3.is_or(e):
            return self.wrap(" or ".join(sorted({self.p(c, 3) for c in e.children()})), 2, ctx)
        if z3.is_implies(e):
            return self.wrap(f"{self.p(e.arg(0), 2)} implies {self.p(e.arg(1), 1)}", 1, ctx)
        if z3.is_not(e) and not (z3.is_or(e.arg(0)) or z3.is_implies(e.arg(0))):
            return self.atom(e, ctx)  # a negated atom: print the values that satisfy it
        if z3.is_not(e):
            return self.wrap(f"not {self.p(e.arg(0), 4)}", 4, ctx)
        if z3.is_eq(e) and z3.is_bool(e.arg(0)):
            return self.wrap(f"({self.p(e.arg(0), 0)}) == ({self.p(e.arg(1), 0)})", 5, ctx)
        return self.atom(e, ctx)

    @staticmethod
    def wrap(s: str, prec: int, ctx: int) -> str:
        return f"({s})" if prec < ctx else s

    def cells_of(self, e: z3.ExprRef) -> list[int]:
        return sorted(self.enc.free_cells(e))

    def atom(self, e: z3.ExprRef, ctx: int) -> str:
        if z3.is_quantifier(e):
            raise CertificateRejected("the invariant is quantified; only quantifier-free invariants are printed")
        cells = self.cells_of(e)
        if z3.is_const(e) and len(cells) == 1 and self.enc.cells[cells[0]].is_bool:
            return self.wrap(self.enc.cells[cells[0]].name, 5, ctx)
        # An atom over finite cells: list the values that satisfy it (exact, and reads as the type's names).
        combos = list(product(*[self.enc.cells[c].values for c in cells]))
        if len(combos) <= 256:
            sat = [vs for vs in combos if self._holds(e, cells, vs)]
            if len(cells) == 1:
                return self._one_cell(cells[0], [vs[0] for vs in sat], ctx)
            return self.wrap(" or ".join(self._conj(cells, vs) for vs in sat) or "false", 2, ctx)
        return self.wrap(self._arith(e), 5, ctx)

    def _holds(self, e: z3.ExprRef, cells: list[int], vs: tuple) -> bool:
        subst = [(self.enc.base[c], z3.BoolVal(v) if isinstance(v, bool) else z3.IntVal(v)) for c, v in zip(cells, vs, strict=True)]
        value = z3.simplify(z3.substitute(e, *subst))
        if not (z3.is_true(value) or z3.is_false(value)):
            raise CertificateRejected(f"cannot print {e} in spec syntax (it does not evaluate on cells)")
        return z3.is_true(value)

    def _value(self, cell: int, v: int | bool) -> str:
        c = self.enc.cells[cell]
        if isinstance(c.ty, ir.TOption) and v == NONE:
            return "none"
        return show_scalar(c.ty.base if isinstance(c.ty, ir.TOption) else c.ty, v)

    def _eq(self, cell: int, v: int | bool) -> str:
        c = self.enc.cells[cell]
        if c.is_bool:
            return c.name if v else f"not ({c.name})" if " " in c.name else f"not {c.name}"
        return f"{c.name} == {self._value(cell, v)}"

    def _one_cell(self, cell: int, good: list[int | bool], ctx: int) -> str:
        c = self.enc.cells[cell]
        if not good:
            return "false"
        if len(good) == len(c.values):
            return "true"
        bad = [v for v in c.values if v not in good]
        if len(bad) < len(good) and not c.is_bool:
            return self.wrap(" and ".join(f"{c.name} != {self._value(cell, v)}" for v in bad), 3, ctx)
        text = " or ".join(self._eq(cell, v) for v in good)
        return self.wrap(text, 2 if len(good) > 1 else 5, ctx)

    def _conj(self, cells: list[int], vs: tuple) -> str:
        return "(" + " and ".join(self._eq(c, v) for c, v in zip(cells, vs, strict=True)) + ")"

    def _arith(self, e: z3.ExprRef) -> str:
        if z3.is_const(e):
            if z3.is_int_value(e):
                return str(e.as_long())
            return self.enc.cells[self.index[e.decl().name()]].name
        ops = {z3.Z3_OP_LE: "<=", z3.Z3_OP_GE: ">=", z3.Z3_OP_LT: "<", z3.Z3_OP_GT: ">",
               z3.Z3_OP_EQ: "==", z3.Z3_OP_ADD: "+", z3.Z3_OP_SUB: "-", z3.Z3_OP_MUL: "*"}
        k = e.decl().kind()
        if k in ops:
            return "(" + f" {ops[k]} ".join(self._arith(c) for c in e.children()) + ")"
        if k == z3.Z3_OP_UMINUS:
            return f"(-{self._arith(e.arg(0))})"
        raise CertificateRejected(f"cannot print {e} in spec syntax")


def recheck(enc: Encoding, text: str, prop: z3.BoolRef, limits: Limits) -> None:
    """Parse, type-check and re-encode ``text``; raise CertificateRejected unless it is inductive
    and implies ``prop`` (a formula over the base frame)."""
    implies_property(enc, inductive_invariant(enc, text, limits), prop, limits)


def inductive_invariant(enc: Encoding, text: str, limits: Limits) -> z3.BoolRef:
    """``text`` parsed, type-checked and re-encoded over the base frame, once it is checked to hold
    initially and to be preserved by every step; raise CertificateRejected otherwise. One
    certificate shared by several properties is checked once, then each implication alone."""
    m = enc.machine
    parsed = check_expression(m, parse_expression(text, f"<certificate of {m.name}>"))
    x = enc.base
    nxt = enc.frame("'")
    cert = z3.And(enc.invariant(parsed, x), enc.domain_constraint(x))
    cert_next = z3.And(enc.invariant(parsed, nxt), enc.domain_constraint(nxt))
    if not _unsat(limits, enc.init(x), z3.Not(cert)):
        raise CertificateRejected("the initial state does not satisfy the invariant")
    s = limits.solver()
    pick = z3.Int("pick?")
    s.add(cert, enc.step_relation(x, nxt, pick), z3.Not(cert_next))
    r = limits.check(s)
    if r == z3.sat:
        culprit = enc.actions[s.model().eval(pick, model_completion=True).as_long()].label
        raise CertificateRejected(f"the invariant is not preserved by {culprit}")
    if r != z3.unsat:
        raise CertificateRejected("the inductiveness check ran out of its work budget")
    return cert


def implies_property(enc: Encoding, cert: z3.BoolRef, prop: z3.BoolRef, limits: Limits) -> None:
    """Raise CertificateRejected unless the (checked) invariant ``cert`` implies ``prop``."""
    if not _unsat(limits, cert, z3.Not(prop)):
        raise CertificateRejected("the invariant does not imply the property")


def _unsat(limits: Limits, *fs: z3.BoolRef) -> bool:
    s = limits.solver()
    s.add(*fs)
    return limits.check(s) == z3.unsat

"""Every user-facing spec error, with its code, in one place.

A spec error is the user's mistake, not ours: it is reported as
``path:line:col: error[RFnnn]: message`` plus ``note:`` lines and a hint, the
process exits 2, and no traceback is shown. Each error kind has one factory
below so the codes and wording stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Loc:
    """A position in a spec file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Loc("<builtin>", 0, 0)

# The catalog: code -> short title. `racefree codes` prints it; docs link to it.
CATALOG: dict[str, str] = {
    "RF001": "syntax error",
    "RF002": "cannot read spec file",
    "RF010": "unknown name",
    "RF011": "duplicate declaration",
    "RF012": "variable assigned twice in one action",
    "RF013": "override of something that does not exist",
    "RF014": "expect names an unknown property",
    "RF015": "unknown base machine",
    "RF016": "duplicate expect",
    "RF017": "import cycle",
    "RF020": "type mismatch",
    "RF021": "literal out of range",
    "RF022": "unbounded type where a bound is required",
    "RF023": "empty domain",
    "RF024": "not a constant expression",
    "RF025": "unsupported type construction",
    "RF026": "assignment to something that is not a state variable",
    "RF027": "wrong number of arguments",
    "RF028": "definition that uses itself",
    "RF029": "symmetric value used asymmetrically",
    "RF030": "spec cannot become a Python module (name clash)",
    "RF040": "malformed event trace",
    "RF041": "malformed constant override",
    "RF042": "nothing to check",
    "RF043": "cannot write output",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    loc: Loc
    notes: tuple[tuple[Loc, str], ...] = ()
    hint: str | None = None

    def render(self) -> str:
        lines = [f"{self.loc}: error[{self.code}]: {self.message}"]
        lines += [f"{loc}: note: {text}" for loc, text in self.notes]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


@dataclass
class SpecError(Exception):
    """Raised for a bad spec; carries one located, coded diagnostic."""

    diagnostic: Diagnostic
    extra: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return self.diagnostic.render()


def _err(code: str, message: str, loc: Loc, hint: str | None = None,
         notes: tuple[tuple[Loc, str], ...] = ()) -> SpecError:
    assert code in CATALOG, code
    return SpecError(Diagnostic(code, message, loc, notes, hint))


def syntax_error(loc: Loc, found: str, expected: list[str]) -> SpecError:
    shown = ", ".join(sorted(expected)[:8])
    more = "" if len(expected) <= 8 else f" (and {len(expected) - 8} more)"
    return _err("RF001", f"unexpected {found}", loc,
                hint=f"expected one of: {shown}{more}" if expected else None)


def unreadable_file(loc: Loc, reason: str) -> SpecError:
    return _err("RF002", f"cannot read spec file: {reason}", loc, hint="check the path")


def unknown_name(loc: Loc, name: str, what: str, known: list[str]) -> SpecError:
    close = [k for k in known if k.lower().startswith(name[:2].lower())][:3]
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?"
    elif known and len(known) <= 12:
        hint = f"known: {', '.join(known)}"
    else:
        hint = f"declare the {what} first"
    return _err("RF010", f"unknown {what} '{name}'", loc, hint=hint)


def duplicate(loc: Loc, name: str, what: str, first: Loc, hint: str | None = None) -> SpecError:
    return _err("RF011", f"duplicate {what} '{name}'", loc, notes=((first, "first declared here"),),
                hint=hint or "rename one of them")


def assigned_twice(loc: Loc, action: str, target: str, first: Loc) -> SpecError:
    return _err("RF012", f"action '{action}' assigns '{target}' twice", loc,
                notes=((first, "first assigned here"),),
                hint="updates are simultaneous; combine them with an if-expression")


def bad_override(loc: Loc, name: str, what: str, base: str) -> SpecError:
    return _err("RF013", f"override of {what} '{name}', but '{base}' has no such {what}", loc,
                hint=f"drop 'override' to add a new {what}")


def unknown_property(loc: Loc, name: str, known: list[str]) -> SpecError:
    return _err("RF014", f"expect names unknown property '{name}'", loc,
                hint="properties: " + (", ".join(known) if known else "(none declared)"))


def unknown_base(loc: Loc, name: str) -> SpecError:
    return _err("RF015", f"machine extends unknown machine '{name}'", loc,
                hint="a base machine must be declared earlier in the same file")


def import_cycle(loc: Loc, path: str) -> SpecError:
    return _err("RF017", f"import of '{path}' closes a cycle", loc,
                hint="move the shared machines into a file that imports nothing of these")


def duplicate_expect(loc: Loc, prop: str, first: Loc) -> SpecError:
    return _err("RF016", f"two expect lines for property '{prop}'", loc,
                notes=((first, "first expect here"),), hint="keep one")


def type_mismatch(loc: Loc, message: str, hint: str | None = None) -> SpecError:
    return _err("RF020", message, loc, hint=hint)


def out_of_range(loc: Loc, value: int, lo: int, hi: int) -> SpecError:
    return _err("RF021", f"value {value} is outside {lo}..{hi}", loc,
                hint="widen the type or change the value")


def unbounded(loc: Loc, where: str) -> SpecError:
    return _err("RF022", f"unbounded type 'int' in {where}", loc,
                hint="state, parameters and quantifiers need a finite type such as 0..N")


def empty_domain(loc: Loc, what: str) -> SpecError:
    return _err("RF023", f"empty domain: {what}", loc, hint="a range lo..hi needs lo <= hi")


def not_constant(loc: Loc, what: str) -> SpecError:
    return _err("RF024", f"{what} must be a constant expression", loc,
                hint="use integer literals and 'const' names only")


def unsupported_type(loc: Loc, message: str) -> SpecError:
    return _err("RF025", message, loc)


def not_assignable(loc: Loc, name: str, kind: str) -> SpecError:
    return _err("RF026", f"cannot assign to {kind} '{name}'", loc,
                hint="only 'var' declarations are state; parameters and constants are read-only")


def arity(loc: Loc, fn: str, want: int, got: int) -> SpecError:
    return _err("RF027", f"'{fn}' takes {want} arguments, got {got}", loc)


def cyclic_definition(loc: Loc, name: str) -> SpecError:
    return _err("RF028", f"definition '{name}' uses itself", loc,
                hint="a def is expanded where it is used, so it cannot refer to itself, directly or not")


def asymmetric(loc: Loc, message: str, hint: str | None = None) -> SpecError:
    return _err("RF029", message, loc, hint=hint or (
        "values of a symmetric type are interchangeable: compare two of them with == or !=, test "
        "membership, use them as map keys; no order, arithmetic, literals or plain integers"))


def bad_trace(loc: Loc, message: str, hint: str | None = None) -> SpecError:
    return _err("RF040", message, loc, hint=hint)


def nothing_to_check(loc: Loc, what: str, hint: str) -> SpecError:
    """A command that would otherwise succeed having checked nothing (never a false green)."""
    return _err("RF042", what, loc, hint=hint)


def cannot_write(loc: Loc, reason: str, hint: str = "choose a writable folder") -> SpecError:
    return _err("RF043", f"cannot write output: {reason}", loc, hint=hint)


def bad_const_override(loc: Loc, item: str, why: str = "is not NAME=INTEGER",
                       hint: str = "for example --const S=20") -> SpecError:
    return _err("RF041", f"constant override '{item}' {why}", loc, hint=hint)

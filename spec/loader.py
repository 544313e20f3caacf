"""Read a spec file into typed, complete machines: parse, merge variants, type-check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from . import errors, ir
from .checker import check_machine
from .parser import RawMachine, parse_text
from .variants import merge


def load_text(text: str, path: str = "<string>") -> ir.SpecFile:
    """This file's machines, complete and typed; an imported file's machines are bases only."""
    own, imported, sources = _with_imports(text, path)
    names = {rm.name for rm in own}
    machines = tuple(check_machine(m) for m in merge(imported + own) if m.name in names)
    return ir.SpecFile(path, machines, tuple(sources))


def _with_imports(text: str, path: str) -> tuple[list[RawMachine], list[RawMachine], list[str]]:
    """(this file's raw machines, every imported file's in dependency order, the imported paths).

    ``import "x.rf"`` is resolved relative to the importing file; a file imported twice (a diamond)
    is read once; a cycle is RF017 at the import that closes it.
    """
    done: dict[Path, list[RawMachine]] = {}

    def visit(text: str, path: str, stack: tuple[Path, ...]) -> list[RawMachine]:
        parsed = parse_text(text, path)
        for imp in parsed.imports:
            target = (Path(path).parent / imp.path).resolve()
            if target in stack:
                raise errors.import_cycle(imp.loc, imp.path)
            if target not in done:
                try:
                    sub = target.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    raise errors.unreadable_file(imp.loc, f"{imp.path}: {why}") from None
                done[target] = visit(sub, str(Path(path).parent / imp.path), (*stack, target))
        return parsed.machines

    own = visit(text, path, (Path(path).resolve(),))
    return own, [rm for machines in done.values() for rm in machines], [str(p) for p in done]


def load_file(path: str | Path) -> ir.SpecFile:
    return load_text(read_spec_text(path), str(path))


def require_machines(f: ir.SpecFile) -> ir.SpecFile:
    """A file a command works on must declare a machine: checking or generating nothing is no success."""
    if not f.machines:
        raise errors.nothing_to_check(errors.Loc(f.path, 1, 1), "no machine in this file",
                                      "a spec declares at least one `machine Name ...`")
    return f


def read_spec_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.unreadable_file(errors.Loc(str(path), 1, 1), exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) from None


def load_instance(path: str | Path, machine: str, consts: Mapping[str, int]) -> ir.Machine:
    """One machine of a spec file at other sizes: its named constants replaced, then type-checked.

    Constants derived from them (``const K = A + 3 + E``) follow, so a deployment runs the
    checked machine at its own sizes (``racefree replay --const S=20``, the ckpt runtime).
    """
    own, imported, _ = _with_imports(read_spec_text(path), str(path))
    merged = {m.name: m for m in merge(imported + own)}
    where = errors.Loc(str(path), 1, 1)
    if machine not in merged:
        raise errors.unknown_name(where, machine, "machine", list(merged))
    m = merged[machine]
    names = [c.name for c in m.consts]
    for name in consts:
        if name not in names:
            raise errors.unknown_name(where, name, f"constant of {machine}", names)
    m = replace(m, consts=tuple(replace(c, value=ir.IntLit(consts[c.name], c.loc)) if c.name in consts else c
                                for c in m.consts))
    return check_machine(m)


def parse_consts(items: list[str], where: str) -> dict[str, int]:
    """``NAME=VALUE`` command-line items (``--const S=20``) as a dict; RF041 on a malformed one."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.isidentifier():
                raise ValueError
            out[name] = int(value)
        except ValueError:
            raise errors.bad_const_override(errors.Loc(where, 1, 1), item) from None
    return out

"""Read a spec file into typed, complete machines: parse, merge variants, type-check."""

from __future__ import annotations

from pathlib import Path

from . import errors, ir
from .checker import check_machine
from .parser import parse_text
from .variants import merge


def load_text(text: str, path: str = "<string>") -> ir.SpecFile:
    raw = parse_text(text, path)
    machines = tuple(check_machine(m) for m in merge(raw))
    return ir.SpecFile(path, machines)


def load_file(path: str | Path) -> ir.SpecFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.unreadable_file(errors.Loc(str(path), 1, 1), exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) from None
    return load_text(text, str(path))

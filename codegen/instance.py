"""A generated machine at a deployment's sizes, built in memory.

``racefree gen`` checks in each machine at the sizes its spec declares (the sizes the
checker explored). A runtime that needs other sizes (a run of 200 steps, four readers)
asks for an *instance*: the same spec with some constants replaced
(``spec.loader.load_instance``), run through the same generator, compiled and cached
for the life of the process. When the constants equal the spec's own and the checked-in
module was generated from this very spec text, that module is imported instead, so the
common case runs the code that mypy checked.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from pathlib import Path

from racefree.runtime.base import MachineBase
from racefree.spec import ir
from racefree.spec.loader import load_instance, read_spec_text
from racefree.spec.pyexpr import paused_gc

from .gen import recorded_hash, source_hash
from .machine import machine_source, snake

_CACHE: dict[tuple[str, str, tuple[tuple[str, int], ...]], type[MachineBase]] = {}


def machine_class(spec: str | Path, machine: str, consts: Mapping[str, int] | None = None) -> type[MachineBase]:
    """The generated class of ``machine`` with ``consts`` replaced (RF010 for an unknown name)."""
    key = (str(spec), machine, tuple(sorted((consts or {}).items())))
    cls = _CACHE.get(key)
    if cls is None:
        m = load_instance(spec, machine, consts or {})
        checked_in = _checked_in(spec, machine)
        if checked_in is not None and _declared(load_instance(spec, machine, {})) == _declared(m):
            mod = checked_in
        else:
            mod = _compile(m, str(spec), key[2])
        cls = getattr(mod, machine)
        _CACHE[key] = cls
    return cls


def _checked_in(spec: str | Path, machine: str) -> types.ModuleType | None:
    """The checked-in module, if it was generated from exactly this spec text."""
    try:
        mod = importlib.import_module(f"racefree.runtime.generated.{snake(machine)}")
        text = Path(mod.__file__ or "").read_text(encoding="utf-8")
    except (ImportError, OSError):
        return None
    return mod if recorded_hash(text) == source_hash(read_spec_text(spec)) else None


def _declared(m: ir.Machine) -> tuple[object, ...]:
    """What an override changes: each constant's declared value (a literal, or its expression)."""
    return tuple((c.name, c.value.value if isinstance(c.value, ir.IntLit) else c.value) for c in m.consts)


def _compile(m: ir.Machine, spec_ref: str, consts: tuple[tuple[str, int], ...]) -> types.ModuleType:
    sizes = "_".join(f"{k}{v}" for k, v in consts)
    name = f"racefree.runtime.instances.{snake(m.name)}_{sizes}"
    with paused_gc():
        source = machine_source(m, spec_ref)
        code = compile(source, f"<racefree instance {m.name} {sizes}>", "exec")
    mod = types.ModuleType(name)
    mod.__file__ = None  # type: ignore[assignment]
    sys.modules[name] = mod  # enum pickling and typing.get_type_hints look modules up by name
    exec(code, mod.__dict__)
    return mod

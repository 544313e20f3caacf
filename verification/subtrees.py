"""Memo keys for IR subtrees, shared by the two grounded translations (encode.py, vector.py).

Expanded ``def``s repeat the same subtrees many times over (gpu_alloc's planner contract is
~40k nodes once expanded), and grounding translates each again per parameter value. A
subtree's translation depends only on its structure and on the parameters and bound
variables it reads, so that pair is a sound memo key; structures are numbered once per node
object, so no whole tree is hashed more than once.
"""

from __future__ import annotations

from typing import Any

from racefree.spec import ir


class SubtreeKeys:
    """``key(e, env)``: equal for structurally equal subtrees under equal values of what they read."""

    def __init__(self) -> None:
        self._sid: dict[int, int] = {}
        self._sids: dict[tuple[Any, ...], int] = {}
        self._free: dict[int, tuple[str, ...]] = {}
        self._keep: list[object] = []  # nodes whose id() is a key stay alive

    def key(self, e: object, env: dict[str, Any]) -> tuple[int, tuple[Any, ...]]:
        return self.structure(e), tuple(env[n] for n in self.locals(e))

    def structure(self, e: object) -> int:
        """An id equal for structurally equal IR subtrees (without hashing whole trees each time)."""
        key = id(e)
        sid = self._sid.get(key)
        if sid is None:
            if isinstance(e, tuple):
                parts: tuple[Any, ...] = ("()", *[self.structure(c) for c in e])
            else:
                scalars = tuple((f, getattr(e, f)) for f in getattr(e, "__dataclass_fields__", ())
                                if f not in ("loc", "ty") and not is_node(getattr(e, f)))
                kind = getattr(e, "kind", None) if isinstance(e, ir.Name) else None
                parts = (type(e).__name__, scalars, kind, *[self.structure(c) for c in ir.children(e)])
            sid = self._sids.setdefault(parts, len(self._sids))
            self._sid[key] = sid
            self._keep.append(e)
        return sid

    def locals(self, e: object) -> tuple[str, ...]:
        """The parameters and bound variables ``e`` reads (its value depends on nothing else but the state)."""
        key = id(e)
        hit = self._free.get(key)
        if hit is None:
            if isinstance(e, ir.Name):
                out = {e.id} if e.kind in ("param", "bound") else set()
            else:
                out = set().union(*[self.locals(c) for c in ir.children(e)])
                if isinstance(e, ir.Quant):
                    out -= {b.name for b in e.binders}
                elif isinstance(e, ir.SetComp):
                    out -= {e.binder.name}
            hit = self._free[key] = tuple(sorted(out))
        return hit


def is_node(x: object) -> bool:
    return isinstance(x, tuple) or hasattr(x, "__dataclass_fields__")

"""Features: generated from tests/specs/counterexample/features.rf.

Roles and their actions:
- worker: start, finish (view: FeaturesWorkerView)
- janitor: reset (view: FeaturesJanitorView)
"""

from __future__ import annotations
import enum
from typing import Any, NamedTuple
from racefree.runtime.base import BAD_ARGS, DONE, EMPTY, UNDEFINED, ActionInfo, MachineBase, Recorder, RoleView, Undefined, chk, co, fset, imin
from racefree.spec.ir import TBool, TEnum, TInt, TMap, TOption, TSet
__all__ = ['Features', 'FeaturesSnapshot', 'Phase', 'FeaturesWorkerView', 'FeaturesJanitorView']


class Phase(enum.IntEnum):
    IDLE = 0
    BUSY = 1
    DONE = 2


_m_IDLE = Phase.IDLE
_m_BUSY = Phase.BUSY
_m_DONE = Phase.DONE


class FeaturesSnapshot(NamedTuple):
    """The machine's state: one field per spec variable; a map is a tuple by key position.

    Equal to the interpreter's encoded state.
    """
    phase: tuple[Phase, ...]
    holder: int | None
    members: frozenset[int]
    total: int
    flags: tuple[int, ...]


_A_start = ActionInfo('start', 'worker', (('i', TInt(0, 2)),), 'wait', ('phase[i] == IDLE', 'holder == none'))
_A_finish = ActionInfo('finish', 'worker', (('i', TInt(0, 2)),), 'raise', ('holder == i',))
_A_reset = ActionInfo('reset', 'janitor', (('i', TInt(0, 2)),), 'ignore', ('phase[i] == DONE', 'not i in members minus {i}'))


class Features(MachineBase):
    """Features"""
    MACHINE = 'Features'
    SPEC = 'tests/specs/counterexample/features.rf'
    VARS = (('phase', TMap(TInt(0, 2), TEnum('Phase', ('IDLE', 'BUSY', 'DONE')))), ('holder', TOption(TInt(0, 2))), ('members', TSet(TInt(0, 2))), ('total', TInt(0, 6)), ('flags', TMap(TBool(), TInt(0, 2))))
    ACTIONS = (_A_start, _A_finish, _A_reset)
    INVARIANTS = ('one_holder', 'holder_busy', 'members_sane', 'busy_is_member', 'never_three', 'total_small', 'some_idle')
    ENUMS = {'Phase': Phase}
    _s_phase: list[Phase]
    _s_holder: int | None
    _s_members: frozenset[int]
    _s_total: int
    _s_flags: list[int]

    def __init__(self, *, monitor: bool=False, recorder: Recorder | None=None) -> None:
        self._s_phase = [Phase.IDLE, Phase.IDLE, Phase.IDLE]
        self._s_holder = None
        self._s_members = EMPTY
        self._s_total = 0
        self._s_flags = [0, 0]
        super().__init__(monitor=monitor, recorder=recorder)

    @property
    def phase(self) -> tuple[Phase, ...]:
        return tuple(self._s_phase)

    @property
    def holder(self) -> int | None:
        return self._s_holder

    @property
    def members(self) -> frozenset[int]:
        return self._s_members

    @property
    def total(self) -> int:
        return self._s_total

    @property
    def flags(self) -> tuple[int, ...]:
        return tuple(self._s_flags)

    def snapshot(self) -> FeaturesSnapshot:
        """The current state (consistent: taken under the lock)."""
        with self._lock:
            return FeaturesSnapshot(*self._values())

    def start(self, i: int, *, timeout: float | None=None) -> bool:
        """Role worker. Requires: phase[i] == IDLE and holder == none

        Blocks until enabled (GuardTimeout after ``timeout`` seconds).
        """
        return self._wait(_A_start, (i,), timeout)

    async def start_async(self, i: int, *, timeout: float | None=None) -> bool:
        """Role worker. Requires: phase[i] == IDLE and holder == none

        Awaits until enabled (GuardTimeout after ``timeout`` seconds).
        """
        return await self._wait_async(_A_start, (i,), timeout)

    def _t_start(self, p_i: int, commit: bool) -> int:
        if not 0 <= p_i <= 2:
            return BAD_ARGS
        try:
            if not self._s_phase[p_i] == _m_IDLE:
                return 0
            if not self._s_holder is None:
                return 1
            _v0 = _m_BUSY
            _k0 = p_i
            _v1 = p_i
            _v2 = self._s_members | fset((p_i,))
        except Undefined:
            return UNDEFINED
        if commit:
            self._s_phase[_k0] = _v0
            self._s_holder = _v1
            self._s_members = _v2
        return DONE

    def finish(self, i: int) -> bool:
        """Role worker. Requires: holder == i

        Raises GuardRejected when not enabled.
        """
        self._lock.acquire()
        try:
            code = self._t_finish(i, True)
            if code == DONE and self._on_commit is not None:
                self._on_commit(_A_finish, (i,))
        finally:
            self._lock.release()
        if code == DONE:
            if self._listeners:
                self._after(_A_finish, (i,))
            return True
        return self._refused(_A_finish, (i,), code)

    def _t_finish(self, p_i: int, commit: bool) -> int:
        if not 0 <= p_i <= 2:
            return BAD_ARGS
        try:
            if not self._s_holder == p_i:
                return 0
            _v0 = _m_DONE
            _k0 = p_i
            _v1 = None
            _c2 = bool(len(self._s_members) >= 2)
            if _c2:
                _v3 = imin(self._s_total + 2, 6)
            else:
                _v4 = chk(self._s_total + 1, 0, 6)
            _v5 = p_i
            _k5 = self._s_total % 2 == 0
        except Undefined:
            return UNDEFINED
        if commit:
            self._s_phase[_k0] = _v0
            self._s_holder = _v1
            if _c2:
                self._s_total = _v3
            else:
                self._s_total = _v4
            self._s_flags[_k5] = _v5
        return DONE

    def reset(self, i: int) -> bool:
        """Role janitor. Requires: phase[i] == DONE and not i in members minus {i}

        Returns False (and logs) when not enabled.
        """
        self._lock.acquire()
        try:
            code = self._t_reset(i, True)
            if code == DONE and self._on_commit is not None:
                self._on_commit(_A_reset, (i,))
        finally:
            self._lock.release()
        if code == DONE:
            if self._listeners:
                self._after(_A_reset, (i,))
            return True
        return self._refused(_A_reset, (i,), code)

    def _t_reset(self, p_i: int, commit: bool) -> int:
        if not 0 <= p_i <= 2:
            return BAD_ARGS
        try:
            if not self._s_phase[p_i] == _m_DONE:
                return 0
            if not not (p_i in self._s_members and (not p_i == p_i)):
                return 1
            _v0 = _m_IDLE
            _k0 = p_i
            _v1 = self._s_members - fset((p_i,)) if p_i in self._s_members and p_i == p_i else self._s_members
        except Undefined:
            return UNDEFINED
        if commit:
            self._s_phase[_k0] = _v0
            self._s_members = _v1
        return DONE

    def _inv_one_holder(self) -> bool:
        """invariant one_holder"""
        try:
            return bool(all([not self._s_phase[p_i] == _m_BUSY or self._s_holder == p_i for p_i in range(0, 3)]))
        except Undefined:
            return False

    def _inv_holder_busy(self) -> bool:
        """invariant holder_busy"""
        try:
            return bool(not self._s_holder is not None or self._s_phase[co(self._s_holder, 0)] == _m_BUSY)
        except Undefined:
            return False

    def _inv_members_sane(self) -> bool:
        """invariant members_sane"""
        try:
            return bool(EMPTY <= self._s_members and len(self._s_members) <= 3)
        except Undefined:
            return False

    def _inv_busy_is_member(self) -> bool:
        """invariant busy_is_member"""
        try:
            return bool(all([not self._s_phase[p_i] == _m_BUSY or p_i in self._s_members for p_i in range(0, 3)]))
        except Undefined:
            return False

    def _inv_never_three(self) -> bool:
        """invariant never_three"""
        try:
            return bool(len(self._s_members) < 3)
        except Undefined:
            return False

    def _inv_total_small(self) -> bool:
        """invariant total_small"""
        try:
            return bool(self._s_total <= 3)
        except Undefined:
            return False

    def _inv_some_idle(self) -> bool:
        """invariant some_idle"""
        try:
            return bool(any([self._s_phase[p_i] != _m_DONE for p_i in range(0, 3)]))
        except Undefined:
            return False


class FeaturesWorkerView(RoleView[Features]):
    """The worker role of Features: only its actions."""

    def start(self, i: int, *, timeout: float | None=None) -> bool:
        return self._machine.start(i, timeout=timeout)

    async def start_async(self, i: int, *, timeout: float | None=None) -> bool:
        return await self._machine.start_async(i, timeout=timeout)

    def finish(self, i: int) -> bool:
        return self._machine.finish(i)


class FeaturesJanitorView(RoleView[Features]):
    """The janitor role of Features: only its actions."""

    def reset(self, i: int) -> bool:
        return self._machine.reset(i)

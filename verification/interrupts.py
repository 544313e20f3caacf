"""Ctrl-C for ``racefree check``: prompt, never lost, never a wrong verdict.

Z3 installs a SIGINT handler of its own around its API calls; a signal that lands there is
consumed by Z3 (sometimes reported as an exhausted budget, which would turn Ctrl-C into a
wrong verdict) or lost. So ``catch_ctrl_c`` switches Z3's handler off, records SIGINT in its
own, and a thread woken by the signal (``signal.set_wakeup_fd``) interrupts the running Z3
call. Python raises KeyboardInterrupt wherever the main thread happens to be, and that may be
a Z3 object's ``__del__``, where exceptions are ignored; ``stop_if_interrupted`` (called around
every solver call and by every progress report) raises it again where it cannot be swallowed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import z3

_interrupted = False
_watcher: threading.Thread | None = None


def catch_ctrl_c() -> None:
    """Make Ctrl-C stop ``racefree check`` promptly and surely (see the module doc). Main thread only."""
    global _interrupted, _watcher
    _interrupted = False
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    z3.set_param("ctrl_c", False)
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_about_interrupts
    if _watcher is None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        _watcher = threading.Thread(target=_interrupt_z3_on_sigint, args=(read_end,), name="ctrl-c", daemon=True)
        _watcher.start()


def _quiet_about_interrupts(unraisable: sys.UnraisableHookArgs) -> None:
    """A KeyboardInterrupt raised in a destructor is ignored by Python; it is recorded, and raised
    again at a safe point, so it needs no report; nor, once interrupted, do the destructors of Z3
    objects it cut off mid-construction. Anything else is reported as usual."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt) and not _interrupted:
        sys.__unraisablehook__(unraisable)


def _interrupt_z3_on_sigint(read_end: int) -> None:
    while True:
        if signal.SIGINT in os.read(read_end, 64):
            z3.main_ctx().interrupt()


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def stop_if_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt


def was_interrupted() -> bool:
    """Ctrl-C was pressed: an error now (``Z3Exception: push canceled``) is its consequence."""
    return _interrupted

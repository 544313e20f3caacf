"""Starting a run in a broadcast folder, and resuming it (the brief's F5), before any worker runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import BadFile, CkptError, DiskError, StaleEpoch
from .files import Layout, fsync_dir, int_field, read_json, remove_tree, write_json
from .store import RUN, ProtocolStore, write_state


def create_run(root: str | os.PathLike[str], config: RunConfig) -> Layout:
    """A fresh run: the folders, RUN.json, EPOCH 0 and the machine's initial state."""
    layout = Layout(root)
    if layout.root.exists() and any(layout.root.iterdir()):
        raise CkptError(f"{layout.root} is not empty: a new run needs an empty folder (resume an old one instead)")
    try:
        for d in (layout.root, layout.consumers, layout.rollouts, layout.staging, layout.trash):
            d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError("create", layout.root, exc) from None
    write_json(layout.root / RUN, config.to_json())
    write_json(layout.epoch, {"epoch": 0})
    with ProtocolStore(layout.root, actor="launcher") as store:
        write_state(layout, store.cls())
    return layout


def read_epoch(layout: Layout) -> int:
    obj = read_json(layout.epoch, "written by the launcher; a resume bumps it")
    if obj is None:
        raise BadFile(layout.epoch, "missing")
    epoch = int_field(layout.epoch, obj, "epoch")
    assert epoch is not None
    return epoch


def check_epoch(layout: Layout, mine: int) -> None:
    """An actor of epoch ``mine`` may touch the run only while EPOCH still says ``mine``."""
    current = read_epoch(layout)
    if current != mine:
        raise StaleEpoch(mine, current)


@contextlib.contextmanager
def run_lock(layout: Layout) -> Any:
    """The run's lock, held by the launcher: no worker is inside a transaction while it is held."""
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def resume_run(root: str | os.PathLike[str], step: int, *, trace_dir: Path | None = None,
               locked: bool = False) -> None:
    """Resume from interval checkpoint ``step``: the machine's ``resume`` decides, then the disk follows.

    Fenced (F5): bump EPOCH; delete LOADED_STEP, every consumer record, ``.staging``,
    ``.trash`` and every step above ``step`` (the dead lineage); keep the steps at or below.
    The post-fix variant (#2219) deletes the steps above and leaves the marker, as upstream.
    Workers of the dead run must be gone: ``locked`` says the caller already holds the lock.
    """
    store = ProtocolStore(root, actor="launcher", trace_dir=trace_dir)
    layout = store.layout
    try:
        ctx = contextlib.nullcontext() if locked else run_lock(layout)
        with ctx:
            store.load()
            before = store.machine.snapshot()
            store.machine.resume(step)  # GuardRejected names the conjunct that refuses it
            after = store.machine.snapshot()
            fenced = store.config.policy == "fenced"
            if fenced:
                write_json(layout.epoch, {"epoch": after.epoch})
                with contextlib.suppress(FileNotFoundError):
                    layout.marker.unlink()
                for d in (layout.staging, layout.trash):
                    _empty(d)
            _empty(layout.consumers)  # fenced: F5; upstream: only this runtime's fan-out bookkeeping
            on_disk = layout.step_dirs()
            for v in sorted(set(on_disk) | set(before.present)):
                if v > step and v in on_disk:
                    for exc in remove_tree(on_disk[v]):
                        raise DiskError("delete", on_disk[v], exc)
            fsync_dir(layout.root)
            write_state(layout, store.machine)
            if store.recorder is not None:
                by_name = {a.name: a for a in store.cls.ACTIONS}
                store.recorder.record(by_name["resume"], (step,))
                store.recorder.flush()
    finally:
        store.close()


def _empty(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            for exc in remove_tree(entry):
                raise DiskError("delete", entry, exc)
        else:
            try:
                entry.unlink()
            except OSError as exc:
                raise DiskError("delete", entry, exc) from None

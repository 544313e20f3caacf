"""Starting a run in a broadcast folder, and resuming it (the brief's F5), before any worker runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
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


def run_epoch(store: ProtocolStore) -> int:
    """The run's epoch: EPOCH, which must say what the protocol state says (fenced: its resume count).

    Compared with the state ``store`` last read (inside a transaction: the committed one); a
    store that has read nothing yet reads it first.
    """
    on_disk = read_epoch(store.layout)
    if store.seq < 0:
        store.peek()
    committed = store.epoch if store.config.fenced else 0
    if on_disk != committed:
        when = "a future" if on_disk > committed else "an older"
        raise BadFile(store.layout.epoch, f"says epoch {on_disk}, {when} epoch than the protocol state's {committed}",
                      "EPOCH was edited or copied from another run; only a resume changes it")
    return on_disk


def check_epoch(store: ProtocolStore, mine: int) -> None:
    """An actor of epoch ``mine`` may touch the run only while the run is still at ``mine``."""
    current = run_epoch(store)
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


def resume_run(root: str | os.PathLike[str], step: int, *, trace_dir: Path | None = None) -> dict[str, Any]:
    """Resume from interval checkpoint ``step``: the machine's ``resume`` decides, then the disk follows.

    Fenced (F5): every reader of the dead run is evicted first (its process is gone; the
    machine resumes only with no reader registered), then bump EPOCH; delete LOADED_STEP,
    every consumer record, ``.staging``, ``.trash`` and every step above ``step`` (the dead
    lineage); keep the steps at or below. A run can be resumed any number of times.
    The post-fix variant (#2219) deletes the steps above and leaves the marker, as upstream.
    The dead run's workers must be gone. Returns what it removed: ``steps`` above ``step``,
    ``staging`` and ``trash`` entries, ``records``, ``evicted`` readers, and whether a
    ``marker`` was there.
    """
    removed: dict[str, Any] = {"steps": [], "staging": 0, "trash": 0, "records": 0, "marker": False, "evicted": []}
    # one trace file per resume (a recorder's file is per process and stem, and truncated when opened)
    actor = f"launcher-{time.time_ns()}"
    with ProtocolStore(root, actor=actor, trace_dir=trace_dir) as store, store.transaction() as m:
        layout = store.layout
        if store.config.fenced:
            removed["evicted"] = _evict_everyone(m)
            rel = step - store.base
            if not 0 <= rel <= store.config.window:
                raise CkptError(f"step {step} is outside the protocol's window (steps {store.base}.."
                                f"{store.absolute(store.config.window)}): resume from a newer interval checkpoint")
            m.resume(rel)  # GuardRejected names the conjunct that refuses it
        else:
            m.resume(step)
        # Deletions first and EPOCH last: a failure part-way leaves the old epoch in force and a
        # second resume_run redoes what is left (every deletion is idempotent).
        for v, folder in sorted(layout.step_dirs().items()):
            if v > step:
                for exc in remove_tree(folder):
                    raise DiskError("delete", folder, exc)
                removed["steps"].append(v)
        removed["records"] = _empty(layout.consumers)  # fenced: F5; upstream: this runtime's fan-out bookkeeping
        if store.config.fenced:
            removed["staging"] = _empty(layout.staging)
            removed["trash"] = _empty(layout.trash)
            removed["marker"] = layout.marker.exists()
            with contextlib.suppress(FileNotFoundError):
                layout.marker.unlink()
            fsync_dir(layout.root)
            store.epoch += 1
            write_json(layout.epoch, {"epoch": store.epoch})
        fsync_dir(layout.root)
    return removed


def _evict_everyone(m: Any) -> list[int]:
    """Evict every registered reader and the eval reader (the dead run's processes are gone)."""
    evicted = [i for i, on in enumerate(m.snapshot().reg) if on]
    for i in evicted:
        m.evict(i)
    if m.enabled("evict_eval"):
        m.evict_eval()
    return evicted


def _empty(folder: Path) -> int:
    """Delete everything in ``folder``; how many entries there were."""
    folder.mkdir(exist_ok=True)
    entries = list(folder.iterdir())
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            for exc in remove_tree(entry):
                raise DiskError("delete", entry, exc)
        else:
            try:
                entry.unlink()
            except OSError as exc:
                raise DiskError("delete", entry, exc) from None
    return len(entries)

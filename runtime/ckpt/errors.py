"""Typed errors for everything the checkpoint runtime can find wrong on disk or in the protocol.

Each carries the step, floor and epoch it is about, so a user never has to decode a bare
``FileNotFoundError`` or an unpickling error raised from deep inside ``torch.load``.
"""

from __future__ import annotations

from pathlib import Path


class CkptError(Exception):
    """Base of every error the checkpoint runtime raises on purpose."""


class LoadFailed(CkptError):
    """A consumer could not load a step: the base of the errors a load boundary counts."""

    def __init__(self, step: int, message: str) -> None:
        self.step = step
        super().__init__(message)


class StepMissing(LoadFailed):
    """The step's folder or one of its shards is not on disk (deleted under the reader)."""

    def __init__(self, step: int, path: Path) -> None:
        self.path = path
        super().__init__(step, f"step {step}: {path} is missing (deleted before or during the load)")


class StepRetired(LoadFailed):
    """The fenced pin refused a step that is no longer published (before any read)."""

    def __init__(self, step: int, floor: int | None) -> None:
        self.floor = floor
        super().__init__(step, f"step {step} is retired (floor {floor}); load a newer step")


class TornRead(LoadFailed):
    """A shard was read while it was being written: truncated or not a torch file."""

    def __init__(self, step: int, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(step, f"step {step}: torn read of {path}: {reason}")


class ManifestMismatch(LoadFailed):
    """A shard differs from what the step's MANIFEST.json promises (size or sha256)."""

    def __init__(self, step: int, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(step, f"step {step}: {path} does not match its manifest: {reason}")


class StaleEpoch(CkptError):
    """The run was resumed under this process: its epoch is not the one on disk."""

    def __init__(self, mine: int, current: int) -> None:
        self.mine, self.current = mine, current
        super().__init__(f"this process belongs to epoch {mine}, the run is at epoch {current}: restart it")


class FencedOut(StaleEpoch):
    """A publish from a dead epoch: the trainer must not write into the resumed run."""


class BadFile(CkptError):
    """A small protocol file (marker, record, EPOCH, state, manifest) is garbage or truncated."""

    def __init__(self, path: Path, reason: str, hint: str = "") -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" + (f" ({hint})" if hint else ""))


class MissingFolder(BadFile):
    """A folder the run was created with is gone (someone deleted it): nothing is recreated on a guess."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(path, f"missing folder ({what})",
                         "it was created with the run and the protocol expects it; restore it, or resume the run")


class StepFolderInvalid(CkptError):
    """A published step folder without its shards or manifest: never loaded, never guessed at."""

    def __init__(self, step: int, path: Path, reason: str) -> None:
        self.step, self.path = step, path
        super().__init__(f"step {step}: {path}: {reason}")


class DiskError(CkptError):
    """The filesystem refused an operation (full, read-only, permissions): nothing was deleted."""

    def __init__(self, op: str, path: Path, exc: OSError) -> None:
        self.op, self.path, self.errno = op, path, exc.errno
        super().__init__(f"cannot {op} {path}: {exc.strerror or exc}; the protocol state is unchanged")


class ProtocolRefused(CkptError):
    """The generated machine did not allow an action the adapter needed (a bug in the caller)."""

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        super().__init__(f"the protocol refused {action}: {reason}")

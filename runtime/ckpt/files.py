"""The broadcast folder on disk: its layout, atomic small files, and shard I/O with torch.

Layout (``root`` is the run's broadcast folder; one host, a local filesystem: NFS breaks
both ``flock`` and the atomicity of ``rename`` this relies on)::

    LOCK                 flock target: every protocol transition holds it
    PROTOCOL.0 .1        the generated machine's state after its last committed transition (statefile.py)
    EPOCH                {"epoch": E}: bumped by every resume (fenced)
    LOADED_STEP          {"epoch": E, "step": c}: written after every reader loaded c
    consumers/<id>.json  {"epoch": E, "loaded": v|null, "pin": v|null, ...}: one per reader
    rollouts/batch_<s>   the orchestrator's shipped batches
    step_<N>/            shard_<j>.pt ... (+ MANIFEST.json when fenced, STABLE otherwise)
    .staging/ .trash/    fenced: invisible to readers (a reader only ever names step_<N>)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import IO, Any

from .errors import (
    BadFile,
    DiskError,
    ManifestMismatch,
    MissingFolder,
    StepFolderInvalid,
    StepMissing,
    TornRead,
)


class Layout:
    """Paths of one broadcast folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.lock = self.root / "LOCK"
        self.epoch = self.root / "EPOCH"
        self.marker = self.root / "LOADED_STEP"
        self.consumers = self.root / "consumers"
        self.rollouts = self.root / "rollouts"
        self.staging = self.root / ".staging"
        self.trash = self.root / ".trash"

    def step(self, n: int) -> Path:
        return self.root / f"step_{n}"

    def record(self, consumer: str) -> Path:
        return self.consumers / f"{consumer}.json"

    def step_dirs(self) -> dict[int, Path]:
        """Every ``step_<N>`` folder by N (other names, including leftovers, are ignored)."""
        out: dict[int, Path] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                name = entry.name
                if name.startswith("step_") and name[5:].isdigit() and entry.is_dir():
                    out[int(name[5:])] = Path(entry.path)
        return out

    def dirs_on_disk(self, kept: int) -> int:
        """Step folders that count against the disk bound: not interval-kept, plus staging and trash."""
        steps = [n for n in self.step_dirs() if not (kept > 0 and n % kept == 0)]
        return len(steps) + _count(self.staging) + _count(self.trash)


def require_folder(path: Path, what: str) -> Path:
    """``path``, which must be a folder (MissingFolder otherwise)."""
    if not path.is_dir():
        raise MissingFolder(path, what)
    return path


def list_folder(path: Path, what: str) -> list[Path]:
    """The entries of a folder the run was created with (MissingFolder when it is gone)."""
    try:
        return [Path(e.path) for e in os.scandir(path)]
    except FileNotFoundError:
        raise MissingFolder(path, what) from None
    except OSError as exc:
        raise DiskError("list", path, exc) from None


def _count(folder: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(folder))
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------ small files

def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """tmp + (fsync) + ``os.replace``: a reader sees the old file or the new one, never a torn one.

    ``durable`` also fsyncs the file and its folder (survives power loss, not only a crash).
    """
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise DiskError("write", path, exc) from None


def write_json(path: Path, obj: object, *, durable: bool = True) -> None:
    write_atomic(path, json.dumps(obj, sort_keys=True).encode(), durable=durable)


def read_json(path: Path, hint: str = "") -> dict[str, Any] | None:
    """A small JSON object file; None when absent; BadFile when garbage, truncated or not an object."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DiskError("read", path, exc) from None
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadFile(path, "not JSON (garbage or truncated)" if data else "empty (truncated)", hint) from None
    if not isinstance(obj, dict):
        raise BadFile(path, f"expected a JSON object, found {type(obj).__name__}", hint)
    return obj


def int_field(path: Path, obj: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    v = obj.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise BadFile(path, f"field {key!r} must be a non-negative integer, found {v!r}")
    return v


def touch(path: Path) -> None:
    try:
        path.touch()
    except OSError as exc:
        raise DiskError("create", path, exc) from None


# ------------------------------------------------------------------ shards

class _HashingWriter:
    """A file object torch.save writes into: hashes and counts the bytes on the way."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, b: bytes) -> int:
        self.sha.update(b)
        self.size += len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def shard_name(j: int) -> str:
    return f"shard_{j}.pt"


def save_shard(path: Path, tensors: dict[str, Any]) -> dict[str, Any]:
    """torch.save into ``path``, flush and fsync; returns its manifest entry (name, size, sha256)."""
    import torch

    try:
        with open(path, "wb") as f:
            w = _HashingWriter(f)
            torch.save(tensors, w)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise DiskError("write", path, exc) from None
    except RuntimeError as exc:  # torch's zip writer turns a failed write into a RuntimeError on close
        cause = exc.__context__
        if isinstance(cause, OSError):
            raise DiskError("write", path, cause) from None
        raise
    return {"name": path.name, "size": w.size, "sha256": w.sha.hexdigest()}


def load_shard(path: Path, step: int, entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with every failure typed: missing, torn, or not as the manifest says."""
    import torch

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise StepMissing(step, path) from None
    except OSError as exc:
        raise DiskError("read", path, exc) from None
    if entry is not None:
        if len(data) != entry["size"]:
            raise ManifestMismatch(step, path, f"{len(data)} bytes, manifest says {entry['size']}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ManifestMismatch(step, path, "sha256 differs")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise TornRead(step, path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(obj, dict):
        raise TornRead(step, path, f"not a state dict ({type(obj).__name__})")
    return obj


MANIFEST = "MANIFEST.json"


def write_manifest(folder: Path, step: int, epoch: int, shards: list[dict[str, Any]]) -> None:
    """Written and fsynced in place: the staging folder is private until its rename (fsync it after)."""
    path = folder / MANIFEST
    try:
        with open(path, "wb") as f:
            f.write(json.dumps({"step": step, "epoch": epoch, "shards": shards}, sort_keys=True).encode())
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise DiskError("write", path, exc) from None


def read_manifest(folder: Path, step: int) -> list[dict[str, Any]]:
    """A published step's shard entries; a folder without a valid manifest is an error, never a guess."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise StepMissing(step, folder)
    obj = read_json(path, "a published step is immutable: delete the folder and republish")
    if obj is None:
        raise StepFolderInvalid(step, folder, "no MANIFEST.json: not a published step")
    shards = obj.get("shards")
    if obj.get("step") != step or not isinstance(shards, list) or not shards or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("size"), int)
            and isinstance(e.get("sha256"), str) for e in shards):
        raise BadFile(path, f"not a manifest of step {step}")
    for e in shards:
        if not (folder / e["name"]).is_file():
            raise StepFolderInvalid(step, folder, f"shard {e['name']} listed in the manifest is missing")
    return shards


def listed_shards(folder: Path, step: int) -> list[Path]:
    """The in-place policies' load: list the folder (as prime-rl's servers do) and take its shards."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("shard_") and n.endswith(".pt"))
    except FileNotFoundError:
        raise StepMissing(step, folder) from None
    if not names:
        raise StepMissing(step, folder / shard_name(0))
    return [folder / n for n in names]


def remove_tree(path: Path) -> list[OSError]:
    """``shutil.rmtree`` file by file (not atomic, as prime-rl's cleaner); returns what it could not remove."""
    failed: list[OSError] = []

    def note(_fn: object, _p: str, info: tuple[type[BaseException], BaseException, object]) -> None:
        if isinstance(info[1], OSError) and not isinstance(info[1], FileNotFoundError):
            failed.append(info[1])

    shutil.rmtree(path, onerror=note)
    return failed

"""Spot-safe checkpoints: atomic, rotated, and found again after a restart.

Each checkpoint is a folder ``ckpt-e<epoch>-s<global step>/`` holding the framework's files plus
``meta.json``. It is written under a temporary name and renamed into place, so a run killed
mid-write (spot reclaim, SIGKILL) leaves either the previous set of checkpoints or the new one,
never a torn file. SageMaker syncs the folder to S3 as it changes and restores it on the
replacement instance; temporary folders are ignored on restore.

A checkpoint can still be damaged after it was written (a partial S3 restore, a full disk on
another writer, a bad copy): ``meta.json`` records every file's size and SHA-256, and
:meth:`CheckpointManager.load_latest` verifies them and the framework's own load, skips a damaged
checkpoint with a warning naming the file, sets it aside under ``corrupt/`` and resumes from the
previous one. Keep at least two checkpoints (``--keep-checkpoints``, default 2) for that fallback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

META = "meta.json"
FILES_KEY = "files"  # meta.json: {relative path: {"bytes": n, "sha256": hex}} of the checkpoint
CORRUPT_DIR = "corrupt"  # damaged checkpoints are moved here (not deleted: evidence)
KEEP_CORRUPT = 2  # damaged checkpoints kept under corrupt/, newest first
_NAME = re.compile(r"^ckpt-e(\d+)-s(\d+)$")
_HASH_CHUNK = 1 << 20
T = TypeVar("T")


class CorruptCheckpoint(Exception):
    """A checkpoint's files do not match what its meta.json recorded at save time."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    @property
    def epoch(self) -> int:
        """The epoch to continue in (0-based)."""
        return int(self.meta["epoch"])

    @property
    def step_in_epoch(self) -> int:
        """Steps of ``epoch`` already done (0: start it from the beginning)."""
        return int(self.meta["step_in_epoch"])

    @property
    def global_step(self) -> int:
        return int(self.meta["global_step"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``folder`` except meta.json, by relative path."""
    return {
        file.relative_to(folder).as_posix(): {"bytes": file.stat().st_size, "sha256": _sha256(file)}
        for file in sorted(folder.rglob("*"))
        if file.is_file() and file.name != META
    }


def verify(checkpoint: Checkpoint) -> None:
    """Raise :class:`CorruptCheckpoint` naming the first file that is missing, of another size
    or of other content than at save time. Checkpoints from before the manifest pass unchecked
    (the framework's load is then the only check)."""
    expected = checkpoint.meta.get(FILES_KEY)
    if expected is None:
        return
    for name, want in expected.items():
        file = checkpoint.path / name
        if not file.is_file():
            raise CorruptCheckpoint(f"{file} is missing")
        size = file.stat().st_size
        if size != want["bytes"]:
            raise CorruptCheckpoint(
                f"{file} has {size} bytes, {want['bytes']} when it was saved (truncated?)"
            )
        if _sha256(file) != want["sha256"]:
            raise CorruptCheckpoint(f"{file} does not match its SHA-256 from save time")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)`` to fill a fresh folder, then move it to ``target`` in one rename.

    An existing ``target`` is replaced (moved aside first, then deleted).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        write(tmp)
        for file in tmp.iterdir():
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        old = None
        if target.exists():
            old = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_model_dir(model_dir: Path, fill: Callable[[Path], None], *, in_place: bool) -> None:
    """Write the model dir so it is never seen half-written (no model without its config).

    ``in_place`` when ``model_dir`` is a mount point, as SageMaker's /opt/ml/model is: a mount
    cannot be replaced by a rename, so the files are written into it directly.
    """
    if in_place or model_dir.is_mount():
        model_dir.mkdir(parents=True, exist_ok=True)
        fill(model_dir)
    else:
        write_atomically(model_dir, fill)


def write_file_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` in one rename (readers never see half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Refuse to resume a checkpoint made with other settings (it would silently mix two runs)."""
    from training.common.env import UsageError

    differs = [
        f"{key}: checkpoint {saved.get(key)!r}, now {value!r}"
        for key, value in current.items()
        if saved.get(key) != value
    ]
    if differs:
        raise UsageError(
            f"the checkpoint in {where} is from a run with other settings ({'; '.join(differs)}): "
            "pass --resume false to start over, or another --checkpoint-dir"
        )


class CheckpointManager:
    """Saves and finds checkpoints in ``directory``; only the writer process (rank 0) writes."""

    def __init__(self, directory: Path, *, keep: int = 2, writer: bool = True) -> None:
        self.directory = directory
        self.keep = keep
        self.writer = writer

    def save(
        self,
        *,
        epoch: int,
        step_in_epoch: int,
        global_step: int,
        meta: dict[str, Any],
        write: Callable[[Path], None],
    ) -> Path | None:
        """Checkpoint the state "about to run step ``step_in_epoch`` of ``epoch``"."""
        if not self.writer:
            return None
        target = self.directory / f"ckpt-e{epoch:05d}-s{global_step:09d}"
        full_meta = {
            **meta,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
        }

        def fill(tmp: Path) -> None:
            write(tmp)
            meta_with_files = {**full_meta, FILES_KEY: file_manifest(tmp)}
            (tmp / META).write_text(json.dumps(meta_with_files, indent=1), encoding="utf-8")

        write_atomically(target, fill)
        self._rotate()
        log.debug("checkpoint %s", target)
        return target

    def list(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if not match or not (path / META).is_file():
                continue
            try:
                meta = json.loads((path / META).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                log.warning("ignoring unreadable checkpoint %s", path)
                continue
            found.append((int(match.group(2)), int(match.group(1)), Checkpoint(path, meta)))
        found.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in found]

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, unverified (see :meth:`load_latest` to resume from one)."""
        checkpoints = self.list()
        return checkpoints[-1] if checkpoints else None

    def load_latest(self, load: Callable[[Checkpoint], T]) -> tuple[Checkpoint, T] | None:
        """The newest checkpoint that verifies and that ``load`` reads, with what it returned.

        A checkpoint whose files fail :func:`verify`, or that ``load`` cannot read, is skipped
        with a warning naming the file and the reason, and (by the writer) moved to ``corrupt/``
        so that it is never picked again and rotation cannot delete the good ones for it; the
        previous checkpoint is tried next. ``load`` raising :class:`common.env.UsageError` (a
        checkpoint from other settings) is not damage: it propagates. None: no usable checkpoint.
        """
        from training.common.env import UsageError

        checkpoints = self.list()
        skipped: list[str] = []
        for checkpoint in reversed(checkpoints):
            try:
                verify(checkpoint)
                return checkpoint, load(checkpoint)
            except UsageError:
                raise
            except Exception as exc:  # any failure to read it back means it cannot be resumed
                reason = (
                    str(exc)
                    if isinstance(exc, CorruptCheckpoint)
                    else (f"{type(exc).__name__}: {exc}")
                )
                where = self._set_aside(checkpoint)
                log.warning(
                    "skipping corrupt checkpoint %s: %s; %s; trying the previous one",
                    checkpoint.path.name,
                    reason,
                    f"moved it to {where}" if where else "left in place (not the writer)",
                )
                skipped.append(checkpoint.path.name)
        if skipped:
            log.warning(
                "no usable checkpoint in %s (skipped %s): starting from the beginning",
                self.directory,
                ", ".join(skipped),
            )
        return None

    def _set_aside(self, checkpoint: Checkpoint) -> Path | None:
        if not self.writer:
            return None
        corrupt = self.directory / CORRUPT_DIR
        corrupt.mkdir(exist_ok=True)
        target = corrupt / checkpoint.path.name
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(checkpoint.path, target)
        for old in sorted(corrupt.iterdir(), key=lambda p: p.name)[:-KEEP_CORRUPT]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def _rotate(self) -> None:
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old.path, ignore_errors=True)
        # Leftovers of runs killed mid-write.
        for stale in self.directory.glob(".tmp-ckpt-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)

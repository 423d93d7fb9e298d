"""Spot-safe checkpoints: atomic, rotated, and found again after a restart.

Each checkpoint is a folder ``ckpt-e<epoch>-s<global step>/`` holding the framework's files plus
``meta.json``. It is written under a temporary name and renamed into place, so a run killed
mid-write (spot reclaim, SIGKILL) leaves either the previous set of checkpoints or the new one,
never a torn file. SageMaker syncs the folder to S3 as it changes and restores it on the
replacement instance; temporary folders are ignored on restore.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

META = "meta.json"
_NAME = re.compile(r"^ckpt-e(\d+)-s(\d+)$")


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
    from common.env import UsageError

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
            (tmp / META).write_text(json.dumps(full_meta, indent=1), encoding="utf-8")

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
        checkpoints = self.list()
        return checkpoints[-1] if checkpoints else None

    def _rotate(self) -> None:
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old.path, ignore_errors=True)
        # Leftovers of runs killed mid-write.
        for stale in self.directory.glob(".tmp-ckpt-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)

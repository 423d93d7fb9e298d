"""A ``model.tar.gz`` unpacked the way SageMaker unpacks it into ``/opt/ml/model``."""

from __future__ import annotations

import tarfile
from pathlib import Path

from container_contract.errors import ContainerError


def unpack_artifact(tarball: Path, dest: Path) -> Path:
    """Unpack ``tarball`` into ``dest`` (safe extraction only: no absolute paths, links out)."""
    if not tarball.is_file():
        raise ContainerError(f"model artifact {tarball} not found")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ContainerError(f"cannot unpack {tarball}: {exc}") from exc
    return dest

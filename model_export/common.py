"""Pieces both exporters share: reading the trained model dir, staging, packing, manifests."""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_export import manifest as manifest_lib
from model_export.errors import ExportError
from model_export.tarball import list_files, sha256_file, write_tarball

log = logging.getLogger(__name__)

TARBALL_NAME = "model.tar.gz"


@dataclass
class ExportResult:
    tarball: Path
    manifest_path: Path
    sha256: str
    manifest: dict[str, Any]
    edge: dict[str, Any] = field(default_factory=dict)


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ExportError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON ({exc}): {what}") from exc


def read_metrics(model_dir: Path) -> dict[str, float]:
    path = model_dir / "metrics.json"
    if not path.is_file():
        log.warning("%s is missing; the manifest will carry no training metrics", path)
        return {}
    metrics = read_json(path, "training writes its final metrics here")
    if not isinstance(metrics, dict):
        raise ExportError(f"{path} must be a flat JSON object of metric name -> number")
    return {str(k): v for k, v in metrics.items() if isinstance(v, int | float)}


def check_class_names(config: dict, path: Path) -> list[str]:
    names = config.get("class_names")
    if not isinstance(names, list) or len(names) < 2:
        raise ExportError(f"{path}: class_names must be a list of at least two labels")
    labels = [str(n) for n in names]
    if len(set(labels)) != len(labels):
        raise ExportError(f"{path}: class_names has duplicates")
    return labels


def check_name_version(name: str, version: int) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name) or not name[0].isalnum():
        raise ExportError(
            f"--name {name!r} must start with a letter or digit and contain only letters, "
            "digits, '-' and '_' (it becomes a folder name and the TF Serving model name)"
        )
    if version < 1:
        raise ExportError(f"--version {version} must be a positive integer")


def finish(
    *,
    staging: Path,
    out_dir: Path,
    manifest: dict[str, Any],
    edge: dict[str, Any],
) -> ExportResult:
    """Hash the staged files, write both manifests, pack the tarball deterministically."""
    manifest["files"] = {
        rel: {"sha256": sha256_file(staging / rel), "bytes": (staging / rel).stat().st_size}
        for rel in list_files(staging)
        if rel != manifest_lib.MANIFEST_NAME
    }
    problems = manifest_lib.validate(manifest)
    if problems:  # a bug in the exporter, not user input
        raise AssertionError("; ".join(problems))
    manifest_lib.write(staging / manifest_lib.MANIFEST_NAME, manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    tarball = out_dir / TARBALL_NAME
    sha = write_tarball(staging, tarball)
    beside = dict(manifest)
    beside["created_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    beside["artifact"] = {"path": TARBALL_NAME, "sha256": sha, "bytes": tarball.stat().st_size}
    if edge:
        beside["edge"] = edge
    manifest_path = out_dir / manifest_lib.MANIFEST_NAME
    manifest_lib.write(manifest_path, beside)
    log.info("wrote %s (sha256 %s) and %s", tarball, sha, manifest_path)
    return ExportResult(tarball, manifest_path, sha, beside, edge)


def copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def python_version() -> str:
    return platform.python_version()

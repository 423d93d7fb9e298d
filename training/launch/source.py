"""The training/ folder as a reproducible ``sourcedir.tar.gz``, named by its content hash.

The bundle's root is training/ (the entry scripts import ``common`` from beside them), plus the
``model_export`` package and the ``local_stage`` handlers it verifies with: a job ends by writing
the serving layout into its model dir (training/common/serving.py), so the ``model.tar.gz`` it
uploads is what the endpoint loads.

The launcher uploads the code itself (instead of letting the SDK stage a local ``source_dir``) so
that: a dry run can print the exact S3 URI a real run uses (same bytes, same hash, no upload);
repeated launches of unchanged code upload nothing; and the code lands under the read-only input
prefix of the training role. ``HyperparameterTuner`` also needs an S3 ``source_dir``: with a local
one it uploads ``sourcedir.tar.gz`` to the bucket root, outside any prefix the role can read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

TRAINING_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINING_DIR.parent
# Packages the job imports from the bundle's root, beside the entry scripts.
PACKAGES = ("model_export", "local_stage")
# The launcher itself and local leftovers never go into the job.
_EXCLUDED_DIRS = {"launch", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", "runs", "data"}
# A package's own data/ (model_export's list of the serving image's packages) is code's data and
# travels with it; only training/'s local data sets stay behind.
_PACKAGE_EXCLUDED_DIRS = _EXCLUDED_DIRS - {"data"}
_EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class SourceBundle:
    data: bytes
    sha256: str

    @property
    def file_name(self) -> str:
        return f"sourcedir-{self.sha256[:16]}.tar.gz"


def _files(root: Path, excluded: set[str] = _EXCLUDED_DIRS) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in excluded or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in _EXCLUDED_SUFFIXES:
            files.append(path)
    return files


def bundle_members(root: Path = TRAINING_DIR) -> list[tuple[str, Path]]:
    """``(name in the bundle, file)`` pairs: ``root``'s files, then each package under its name."""
    members = [(path.relative_to(root).as_posix(), path) for path in _files(root)]
    for package in PACKAGES:
        folder = REPO_ROOT / package
        members += [
            (f"{package}/{p.relative_to(folder).as_posix()}", p)
            for p in _files(folder, _PACKAGE_EXCLUDED_DIRS)
        ]
    return members


def build_bundle(root: Path = TRAINING_DIR) -> SourceBundle:
    """Tar + gzip ``root`` with fixed metadata (mtime 0, owner root): equal code, equal bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in bundle_members(root):
            info = tarfile.TarInfo(name)
            content = path.read_bytes()
            info.size = len(content)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(content))
    data = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return SourceBundle(data=data, sha256=hashlib.sha256(data).hexdigest())

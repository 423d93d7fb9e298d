"""Deterministic ``model.tar.gz`` writing and safe extraction.

Same files in, same bytes out: entries are sorted, every header has mtime 0, uid/gid 0, empty
owner names and fixed modes (0644 files, 0755 folders), and the gzip header has no file name and
mtime 0. So the tarball's sha256 depends only on the files' paths and contents.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path, PurePosixPath

from model_export.errors import ExportError

_CHUNK_BYTES = 1 << 20
# Refuse to unpack more than this: a small gzip can expand without bound.
MAX_UNPACKED_BYTES = 32 * 1024**3


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a sorted list of POSIX relative paths."""
    files = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                raise ExportError(f"{path} is a symbolic link; artifacts hold regular files only")
            files.append(path.relative_to(root).as_posix())
    return sorted(files)


def _info(name: str, *, is_dir: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tarball(root: Path, out_path: Path) -> str:
    """Pack the contents of ``root`` (not ``root`` itself) into ``out_path``; return its sha256."""
    files = list_files(root)
    dirs = sorted({str(parent) for f in files for parent in PurePosixPath(f).parents} - {"."})
    entries = sorted([(d, True) for d in dirs] + [(f, False) for f in files])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")
    with (
        open(tmp_path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, is_dir in entries:
            if is_dir:
                tar.addfile(_info(name, is_dir=True))
                continue
            path = root / name
            with open(path, "rb") as f:
                tar.addfile(_info(name, is_dir=False, size=path.stat().st_size), f)
    os.replace(tmp_path, out_path)
    return sha256_file(out_path)


def safe_extract(tar_path: Path, dest: Path) -> list[str]:
    """Unpack ``tar_path`` into ``dest`` refusing anything but plain files and folders inside it.

    Returns the member names. Absolute paths, ``..``, links and device files are rejected with a
    message naming the member, before anything is written; extraction itself also runs under
    tarfile's ``data`` filter as a second line of defence.
    """
    try:
        tar = tarfile.open(tar_path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise ExportError(f"{tar_path} is not a readable tar archive: {exc}") from exc
    with tar:
        members = tar.getmembers()
        total = 0
        for member in members:
            name = member.name
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts:
                raise ExportError(
                    f"refusing {tar_path}: member {name!r} points outside the archive"
                )
            if not (member.isfile() or member.isdir()):
                raise ExportError(
                    f"refusing {tar_path}: member {name!r} is a link or special file; "
                    "model artifacts hold regular files and folders only"
                )
            total += member.size
        if total > MAX_UNPACKED_BYTES:
            raise ExportError(f"refusing {tar_path}: it unpacks to {total} bytes")
        dest.mkdir(parents=True, exist_ok=True)
        tar.extractall(dest, filter="data")
    return [m.name for m in members]


def read_member(tar_path: Path, name: str) -> bytes | None:
    """The bytes of one member (e.g. ``manifest.json``), or None when it is absent."""
    with tarfile.open(tar_path, mode="r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.removeprefix("./") == name:
                f = tar.extractfile(member)
                return f.read() if f else None
    return None

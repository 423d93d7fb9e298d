"""Folder <-> S3 prefix sync on boto3's transfer manager: the launcher's "aws s3 sync".

Files are compared by size and, for single-part uploads, by MD5 against the object's ETag, so a
re-run uploads or downloads only what changed. Multipart objects (ETag ``<md5>-<parts>``) are
compared by size alone.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

log = logging.getLogger(__name__)

TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, max_concurrency=4)


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    etag: str


def list_objects(s3: Any, bucket: str, prefix: str) -> dict[str, RemoteObject]:
    """Every object under ``prefix``, keyed by the key relative to it."""
    objects: dict[str, RemoteObject] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :].lstrip("/")
            if relative and not item["Key"].endswith("/"):
                objects[relative] = RemoteObject(item["Key"], item["Size"], item["ETag"].strip('"'))
    return objects


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # compared with S3's ETag, not for security
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def same(path: Path, remote: RemoteObject | None) -> bool:
    if remote is None or path.stat().st_size != remote.size:
        return False
    if "-" in remote.etag:  # multipart: the ETag is not the file's MD5
        return True
    return _md5(path) == remote.etag


def local_files(root: Path) -> dict[str, Path]:
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    # A bar in a terminal, nothing in logs (the summary line says what happened).
    return tqdm(total=total, desc=desc, unit="file", disable=not sys.stderr.isatty())


def _run(jobs: Iterable[Any], count: int, workers: int, desc: str) -> None:
    with _progress(count, desc) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
            bar.update(1)


def upload_dir(
    s3: Any, root: Path, bucket: str, prefix: str, *, workers: int = 8, dry_run: bool = False
) -> list[str]:
    """Upload the files of ``root`` that differ from ``s3://bucket/prefix``; returns their keys."""
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    remote = list_objects(s3, bucket, prefix) if not dry_run else {}
    todo = [
        (path, prefix + relative)
        for relative, path in local_files(root).items()
        if not same(path, remote.get(relative))
    ]
    if not dry_run:
        jobs = [
            (lambda p=path, k=key: s3.upload_file(str(p), bucket, k, Config=TRANSFER))
            for path, key in todo
        ]
        _run(jobs, len(jobs), workers, "upload")
    log.info(
        "%s %d file(s) from %s to s3://%s/%s (%d unchanged)",
        "would upload" if dry_run else "uploaded",
        len(todo),
        root,
        bucket,
        prefix,
        len(local_files(root)) - len(todo),
    )
    return [key for _, key in todo]


def download_prefix(s3: Any, bucket: str, prefix: str, root: Path, *, workers: int = 8) -> int:
    """Download the objects under ``s3://bucket/prefix`` that differ from ``root``'s files."""
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    todo = []
    for relative, remote in list_objects(s3, bucket, prefix).items():
        target = root / relative
        if not target.resolve().is_relative_to(root.resolve()):
            raise ValueError(f"refusing to write {remote.key} outside {root}")
        if not (target.is_file() and same(target, remote)):
            todo.append((remote.key, target))
    for _, target in todo:
        target.parent.mkdir(parents=True, exist_ok=True)
    jobs = [
        (lambda k=key, t=target: s3.download_file(bucket, k, str(t), Config=TRANSFER))
        for key, target in todo
    ]
    _run(jobs, len(jobs), workers, "download")
    log.info("downloaded %d file(s) from s3://%s/%s to %s", len(todo), bucket, prefix, root)
    return len(todo)

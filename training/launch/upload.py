"""``upload-data``: a local data set folder -> ``s3://BUCKET/training/input/datasets/MODEL/``.

The folder's layout is kept key for key (``data/digits/train/3/17.png`` ->
``.../datasets/digits/train/3/17.png``), which is the layout ``train`` reads: one S3 prefix per
channel (``train/``, ``valid/``, ``test/``). Re-running uploads only changed files.
"""

from __future__ import annotations

from pathlib import Path

from training.launch import s3sync
from training.launch.settings import LaunchError


def upload_folder(
    source: Path, *, bucket: str, prefix: str, region: str, workers: int, dry_run: bool
) -> str:
    if not source.is_dir():
        raise LaunchError(
            f"--source {source} is not a folder (e.g. data/digits from prepare_digits)"
        )
    if not any(source.rglob("*")):
        raise LaunchError(f"--source {source} is empty")
    if prefix.startswith("/") or "//" in prefix:
        raise LaunchError(
            f"--prefix {prefix!r} must be a relative key prefix like datasets/digits/"
        )
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    if dry_run:
        keys = s3sync.upload_dir(None, source, bucket, prefix, dry_run=True)
        for key in keys:
            print(f"s3://{bucket}/{key}")
    else:
        import boto3

        s3 = boto3.Session(region_name=region).client("s3")
        s3sync.upload_dir(s3, source, bucket, prefix, workers=workers)
    return f"s3://{bucket}/{prefix}"

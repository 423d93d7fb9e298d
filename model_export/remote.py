"""Read the manifest of an artifact already in S3 (a training job's ``model.tar.gz``), at deploy time.

The CDK app never calls AWS while synthesizing, yet the serving container it picks depends on the
artifact's framework. ``make deploy MODEL_DATA_URL=s3://...`` therefore runs
``python -m model_export context s3://...`` first: it streams the tarball just far enough to read
``manifest.json`` (the exporter's, which a job's model dir carries) and prints the CDK context that
selects the container (``-c framework=... -c framework_version=... -c py_version=...
-c endpoint_content_type=...``), which the deploy passes on to ``cdk deploy``.
"""

from __future__ import annotations

import json
import re
import tarfile
from typing import Any

from model_export import manifest as manifest_lib
from model_export.errors import ExportError

_S3_URL = re.compile(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.+\.tar\.gz)")
# Manifest key -> the CDK config key that takes it (stacks/config.py).
CONTEXT_KEYS = {
    "framework": "framework",
    "framework_version": "framework_version",
    "py_version": "py_version",
    "content_type": "endpoint_content_type",
}
_MEMBER_NAMES = {manifest_lib.MANIFEST_NAME, "./" + manifest_lib.MANIFEST_NAME}
_MAX_MANIFEST_BYTES = 1 << 20  # 1 MiB; ours are a few kB
# The values become command-line words: nothing a shell would read as more than one.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+\-]{0,99}")


def parse_url(url: str) -> tuple[str, str]:
    match = _S3_URL.fullmatch(url)
    if not match:
        raise ExportError(f"{url!r} is not an s3://<bucket>/<key>.tar.gz URI of a model artifact")
    return match.group(1), match.group(2)


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        config=Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard"}),
    )


def read_manifest(url: str, client: Any = None) -> dict[str, Any]:
    """``manifest.json`` from inside the ``model.tar.gz`` at ``url`` (read as a stream)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_url(url)
    client = client or s3_client()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise ExportError(
                f"no model artifact at {url} ({code}): check the URI; a training job writes "
                "s3://<bucket>/training/jobs/<job name>/output/model.tar.gz when it completes"
            ) from exc
        raise ExportError(f"cannot read {url}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ExportError(f"cannot read {url}: {exc}") from exc
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as tar:
            for member in tar:
                if member.name in _MEMBER_NAMES and member.isfile():
                    if member.size > _MAX_MANIFEST_BYTES:
                        raise ExportError(f"{url}: manifest.json is {member.size} bytes")
                    handle = tar.extractfile(member)
                    raw = handle.read() if handle is not None else b""
                    break
            else:
                raise ExportError(
                    f"{url} has no manifest.json: it was not written by this project's training "
                    "scripts or `python -m model_export`. Export it with model_export, or name "
                    "the container yourself: -c framework=<pytorch|tensorflow> "
                    "-c framework_version=<version>"
                )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ExportError(f"{url} is not a readable .tar.gz: {exc}") from exc
    finally:
        body.close()
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ExportError(f"{url}: manifest.json is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ExportError(f"{url}: manifest.json must hold a JSON object")
    problems = [
        f"{key} is {manifest.get(key)!r}"
        for key in CONTEXT_KEYS
        if not isinstance(manifest.get(key), str) or not _SAFE_VALUE.fullmatch(manifest[key])
    ]
    if problems:
        raise ExportError(f"{url}: manifest.json is unusable: {'; '.join(problems)}")
    return manifest


def smoke_case(manifest: dict[str, Any], url: str) -> dict[str, Any]:
    """A smoke case (``.github/smoke/<model>.json``'s format) from the manifest's own example:
    the live API must answer the label the trained model gave at export."""
    example = manifest.get("example")
    if not isinstance(example, dict):
        raise ExportError(
            f"{url}: manifest.json has no usable example request (its 'example' is "
            f"{type(example).__name__}, not an object); re-export the model to record one"
        )
    try:
        body, label = example["body"], example["expected"]["labels"][0]
    except (TypeError, KeyError, IndexError) as exc:
        raise ExportError(f"{url}: manifest.json has no usable example request ({exc})") from exc
    return {
        "description": f"The example request recorded in {url}'s manifest.json at export; the "
        "API must answer the label the trained model gave it.",
        "predictions": [
            {
                "name": f"manifest example of {manifest.get('name', 'the model')}",
                "content_type": str(example.get("content_type", "application/json")),
                "body": body,
                "path": "predictions.0.label",
                "equals": label,
            }
        ],
    }


def cdk_context(manifest: dict[str, Any]) -> list[str]:
    """``["-c", "framework=pytorch", ...]``: what the CDK app's config takes from the manifest."""
    args: list[str] = []
    for source, key in CONTEXT_KEYS.items():
        args += ["-c", f"{key}={manifest[source]}"]
    return args

"""The model artifact of a stack that names an existing S3 object, fetched as SageMaker fetches it."""

from __future__ import annotations

import logging
from pathlib import Path

from local_stage.errors import LocalStageError

log = logging.getLogger("local_stage")


def download_model_data(url: str, target: Path) -> Path:
    """An existing S3 artifact (model_data_url), fetched with your AWS credentials as SageMaker
    fetches it at endpoint creation. ``AWS_ENDPOINT_URL_S3`` points boto3 at a stand-in."""
    import re

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if not match:
        raise LocalStageError(f"the Model's ModelDataUrl {url!r} is not an s3://bucket/key URI")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading the model artifact %s", url)
    try:
        boto3.client("s3").download_file(match.group(1), match.group(2), str(target))
    except (ClientError, BotoCoreError) as exc:
        raise LocalStageError(
            f"cannot download the model artifact {url} ({exc}): the local stage fetches an "
            "existing S3 artifact with your AWS credentials; or pass --model-data <model.tar.gz>"
        ) from exc
    return target

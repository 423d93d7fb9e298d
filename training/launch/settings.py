"""Where a launch goes: region, training role and bucket, from flags or the deploy's outputs.

Nothing here calls AWS. The role and bucket come from ``--role`` / ``--bucket``, else from the
``cdk-outputs.json`` that ``make deploy`` writes (``{"MlServing-<stage>-<model>":
{"TrainingRoleArn": ..., "BucketName": ...}}``); the region from ``--region``, else ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / the AWS config file.

The bucket layout the training role is scoped to, and the stack names, are shared facts
(``contracts.bucket``, ``contracts.naming``), re-exported here for the launcher's modules.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from contracts.bucket import (
    CHECKPOINT_PREFIX,
    CODE_PREFIX,
    DATA_PREFIX,
    DATASETS_PREFIX,
    OUTPUT_PREFIX,
    WEIGHTS_PREFIX,
)
from contracts.naming import STAGES, stack_name

__all__ = [
    "CHECKPOINT_PREFIX",
    "CODE_PREFIX",
    "DATASETS_PREFIX",
    "DATA_PREFIX",
    "OUTPUT_PREFIX",
    "STAGES",
    "WEIGHTS_PREFIX",
    "stack_name",
]

DEFAULT_OUTPUTS_FILE = Path("cdk-outputs.json")

# botocore's sagemaker service model: CreateTrainingJob RoleArn pattern.
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
# S3 bucket naming rules (general purpose buckets).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class LaunchError(Exception):
    """Bad input or missing configuration: shown to the user as one line, without a traceback."""


@dataclass(frozen=True)
class Target:
    region: str
    role_arn: str
    bucket: str


def _read_outputs(path: Path, stack: str) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        outputs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LaunchError(f"{path} is not valid JSON ({exc}): re-run `make deploy`") from exc
    if not isinstance(outputs, dict):
        raise LaunchError(f"{path} should map stack names to outputs: re-run `make deploy`")
    stack_outputs = outputs.get(stack, {})
    return stack_outputs if isinstance(stack_outputs, dict) else {}


def resolve_region(region: str | None) -> str:
    if not region:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import botocore.session

        # Reads ~/.aws/config (or AWS_CONFIG_FILE) only; no network.
        region = botocore.session.get_session().get_config_variable("region")
    if not region:
        raise LaunchError(
            "no AWS region: pass --region (e.g. --region eu-west-1) or set AWS_REGION"
        )
    if not _REGION.match(region):
        raise LaunchError(f"--region {region!r} is not an AWS region name such as eu-west-1")
    return region


def validate_role_arn(role_arn: str) -> str:
    if not _ROLE_ARN.match(role_arn):
        raise LaunchError(
            f"--role {role_arn!r} is not an IAM role ARN "
            "(arn:aws:iam::<12-digit account>:role/<name>)"
        )
    return role_arn


def validate_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise LaunchError(
            f"--bucket {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, "
            "'-' or '.'; a name, not an s3:// URI)"
        )
    return bucket


def resolve_target(
    *,
    stage: str,
    model: str,
    role: str | None,
    bucket: str | None,
    region: str | None,
    outputs_file: Path = DEFAULT_OUTPUTS_FILE,
    need_role: bool = True,
) -> Target:
    """Role, bucket and region for ``model`` in ``stage``; a clear error names what is missing."""
    stack = stack_name(stage, model)
    outputs = _read_outputs(outputs_file, stack) if not (role and bucket) else {}
    role = role or outputs.get("TrainingRoleArn")
    bucket = bucket or outputs.get("BucketName")
    where = (
        f"{outputs_file} has no {stack} outputs"
        if outputs_file.is_file()
        else f"{outputs_file} does not exist"
    )
    missing = []
    if need_role and not role:
        missing.append("--role <training role ARN>")
    if not bucket:
        missing.append("--bucket <bucket name>")
    if missing:
        raise LaunchError(
            f"no {' and no '.join(m.split()[0].lstrip('-') for m in missing)} for {stack} "
            f"({where}): pass {' and '.join(missing)}, or run `make deploy STAGE={stage} "
            f"MODEL={model}` first (it writes {stack}.TrainingRoleArn and .BucketName to "
            f"{outputs_file})"
        )
    return Target(
        region=resolve_region(region),
        role_arn=validate_role_arn(role) if role else "",
        bucket=validate_bucket(bucket),  # type: ignore[arg-type]
    )


_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")


def parse_s3_uri(uri: str, flag: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    match = _S3_URI.match(uri)
    if not match:
        raise LaunchError(f"{flag} {uri!r} is not an S3 URI such as s3://my-bucket/some/prefix")
    bucket, key = match.groups()
    validate_bucket(bucket)
    return bucket, key

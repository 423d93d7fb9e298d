"""Credentials: who the doctor (and so the deploy) runs as (STS GetCallerIdentity)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from account_setup.doctor.aws_calls import error_code
from account_setup.doctor.report import Report
from stacks.config import ServingConfig


def check_identity(report: Report, sts: Any, config: ServingConfig, region: str) -> str | None:
    """STS GetCallerIdentity; returns the account id, or None when nothing else can be checked."""
    check = "AWS credentials"
    try:
        identity = sts.get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError):
        report.add(
            check,
            "fail",
            "no AWS credentials found",
            "configure them: `aws configure`, `aws sso login --profile <p>` then "
            "`export AWS_PROFILE=<p>`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
        return None
    except ClientError as exc:
        report.add(
            check,
            "fail",
            f"the credentials were refused ({error_code(exc)}): {exc}",
            "refresh them (`aws sso login`, new session token) and check AWS_PROFILE",
        )
        return None
    except BotoCoreError as exc:
        report.add(check, "fail", f"could not reach STS in {region}: {exc}")
        return None
    account = str(identity["Account"])
    report.add(check, "ok", f"account {account} as {identity['Arn']}")
    if config.account and config.account != account:
        report.add(
            check,
            "fail",
            f"the stack targets account {config.account} (-c account) but the credentials are "
            f"for {account}",
            "use credentials for the target account, or drop -c account",
        )
    return account

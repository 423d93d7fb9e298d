"""The serving stack: absent, updatable, or in a state no update can leave (CloudFormation)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_setup.doctor.aws_calls import could_not
from account_setup.doctor.report import Report
from stacks.config import ServingConfig


def check_stack_state(report: Report, cloudformation: Any, config: ServingConfig) -> bool:
    """Whether the serving stack exists; a state no update can leave is a failure."""
    check = "Stack state"
    try:
        stacks = cloudformation.describe_stacks(StackName=config.stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            report.add(check, "ok", f"{config.stack_name} does not exist yet: a first deploy")
        else:
            could_not(
                report,
                check,
                f"describe {config.stack_name}",
                exc,
                f"aws cloudformation describe-stacks --stack-name {config.stack_name}",
            )
        return False
    except BotoCoreError as exc:
        could_not(report, check, f"describe {config.stack_name}", exc, "aws cloudformation ...")
        return False
    status = str(stacks[0].get("StackStatus", ""))
    if status == "ROLLBACK_COMPLETE":
        report.add(
            check,
            "fail",
            f"{config.stack_name} is in ROLLBACK_COMPLETE (its first create failed); "
            "CloudFormation can only delete it",
            f"make destroy STAGE={config.stage} MODEL={config.model}, then deploy again",
        )
    elif status.endswith("_IN_PROGRESS"):
        report.add(
            check,
            "fail",
            f"{config.stack_name} is busy ({status})",
            "wait for it to finish (CloudFormation console, or `aws cloudformation wait`)",
        )
    elif status.endswith("_FAILED"):
        report.add(
            check,
            "fail",
            f"{config.stack_name} is in {status}",
            f"see its events: aws cloudformation describe-stack-events --stack-name "
            f"{config.stack_name}",
        )
    else:
        report.add(check, "ok", f"{config.stack_name} is {status}: this deploy updates it")
    return True

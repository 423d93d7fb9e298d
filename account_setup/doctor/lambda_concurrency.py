"""Lambda: does the gateway's reserved or provisioned concurrency fit the account's pool?"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_setup.doctor.aws_calls import (
    could_not,
    quota_console_url,
    quota_increase_command,
)
from account_setup.doctor.needs import lambda_reservation
from account_setup.doctor.report import Report
from stacks.config import ServingConfig

# Lambda keeps this much concurrency unreserved for functions without a reservation, or the
# whole account limit when that is smaller ("decreases account's UnreservedConcurrentExecution
# below its minimum value of [10]" on new accounts).
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
LAMBDA_UNRESERVED_FLOOR = 100
# Service Quotas' code for Lambda's "Concurrent executions" (per account and region).
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"


def _current_stack_reservation(lambda_client: Any, cloudformation: Any, stack_name: str) -> int:
    """Concurrency the deployed stack's functions already hold (a redeploy gets it back)."""
    functions: list[str] = []
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for resource in page.get("StackResourceSummaries", []):
            if resource.get("ResourceType") == "AWS::Lambda::Function" and resource.get(
                "PhysicalResourceId"
            ):
                functions.append(resource["PhysicalResourceId"])
    held = 0
    for name in functions:
        reserved = lambda_client.get_function_concurrency(FunctionName=name).get(
            "ReservedConcurrentExecutions"
        )
        provisioned = 0
        for page in lambda_client.get_paginator("list_provisioned_concurrency_configs").paginate(
            FunctionName=name
        ):
            provisioned += sum(
                int(c.get("RequestedProvisionedConcurrentExecutions", 0))
                for c in page.get("ProvisionedConcurrencyConfigs", [])
            )
        held += max(int(reserved or 0), provisioned)
    return held


def check_lambda_concurrency(
    report: Report,
    lambda_client: Any,
    cloudformation: Any,
    config: ServingConfig,
    *,
    region: str,
    stack_exists: bool,
) -> None:
    check = "Lambda concurrency"
    by_hand = f"aws lambda get-account-settings --region {region}"
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as exc:
        could_not(report, check, "read the Lambda account settings", exc, by_hand)
        return
    total = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    floor = min(LAMBDA_UNRESERVED_FLOOR, total)
    need = lambda_reservation(config)

    held = 0
    if stack_exists and need:
        try:
            held = _current_stack_reservation(lambda_client, cloudformation, config.stack_name)
        except (ClientError, BotoCoreError) as exc:
            could_not(
                report,
                check,
                f"read what {config.stack_name}'s functions reserve now",
                exc,
                f"aws lambda get-function-concurrency / list-provisioned-concurrency-configs "
                f"on {config.stack_name}'s gateway function",
            )
    available = unreserved + held - floor
    account = f"account limit {total}, unreserved {unreserved}"
    if need == 0:
        report.add(check, "ok", f"nothing reserved by this stage ({account})")
        return
    what = (
        f"reserved concurrency {need}"
        if config.lambda_reserved_concurrency
        else f"provisioned concurrency {need}"
    )
    if need <= available:
        report.add(check, "ok", f"{what} fits ({account}, {floor} must stay unreserved)")
        return
    desired = max(total + (need - available), 1000)
    report.add(
        check,
        "fail",
        f"{what} needs {need + floor - held} unreserved concurrency ({need} for this stage + "
        f"{floor} Lambda keeps unreserved{f' - {held} the stack holds now' if held else ''}); "
        f"{account}",
        quota_increase_command(region, "lambda", LAMBDA_CONCURRENCY_QUOTA, desired),
        quota_console_url(region, "lambda", LAMBDA_CONCURRENCY_QUOTA),
        (
            "or reserve less: -c reserve_lambda_concurrency=false, a lower throttle_burst_limit, "
            f"or -c provisioned_concurrency=0 (stage {config.stage} in cdk.json)"
            if config.lambda_reserved_concurrency
            else "or deploy without it: -c provisioned_concurrency=0 "
            f"(stage {config.stage} in cdk.json)"
        ),
    )

"""Every check in order, against clients from one factory (boto3 in the CLI, stubs in tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from account_setup.doctor.bootstrap import DEFAULT_QUALIFIER, DEFAULT_TOOLKIT_STACK, check_bootstrap
from account_setup.doctor.identity import check_identity
from account_setup.doctor.lambda_concurrency import check_lambda_concurrency
from account_setup.doctor.report import Report
from account_setup.doctor.sagemaker_quota import check_sagemaker_quota
from account_setup.doctor.stack_state import check_stack_state
from stacks.config import ServingConfig

ClientFactory = Callable[[str], Any]


def run_checks(
    config: ServingConfig,
    client: ClientFactory,
    *,
    region: str,
    qualifier: str = DEFAULT_QUALIFIER,
    toolkit_stack: str = DEFAULT_TOOLKIT_STACK,
    cli_bootstrap_version: int | None = None,
    region_source: str = "",
) -> Report:
    """Every check, in order; later ones are skipped when there are no usable credentials."""
    report = Report()
    if region_source:
        report.add("Region", "ok", f"{region} (from {region_source})")
    else:
        report.add(
            "Region",
            "warn",
            f"no region configured: the CDK CLI falls back to {region}, and so do these checks",
            "export AWS_REGION=<region> (or `aws configure set region <region>`) to choose",
        )
    account = check_identity(report, client("sts"), config, region)
    if account is None:
        return report
    cloudformation = client("cloudformation")
    check_bootstrap(
        report,
        client("ssm"),
        cloudformation,
        region=region,
        account=account,
        qualifier=qualifier,
        toolkit_stack=toolkit_stack,
        cli_version=cli_bootstrap_version,
    )
    exists = check_stack_state(report, cloudformation, config)
    check_lambda_concurrency(
        report, client("lambda"), cloudformation, config, region=region, stack_exists=exists
    )
    check_sagemaker_quota(report, client("service-quotas"), config, region=region)
    return report

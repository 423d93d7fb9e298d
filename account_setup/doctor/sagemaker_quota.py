"""SageMaker: the "<instance type> for endpoint usage" quota against the endpoint's fleets."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_setup.doctor.aws_calls import (
    could_not,
    quota_console_url,
    quota_increase_command,
)
from account_setup.doctor.needs import EndpointNeed
from account_setup.doctor.report import Report
from stacks.config import ServingConfig


def _find_quota(client: Any, operation: str, quota_name: str) -> dict[str, Any] | None:
    for page in client.get_paginator(operation).paginate(ServiceCode="sagemaker", MaxResults=100):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == quota_name:
                return dict(quota)
    return None


def find_endpoint_quota(
    service_quotas: Any, instance_type: str
) -> tuple[dict[str, Any] | None, str]:
    """The applied quota for endpoint usage of ``instance_type``, else AWS's default for it.

    ListServiceQuotas only lists quotas with an applied value; a type nobody raised shows up in
    ListAWSDefaultServiceQuotas only.
    """
    name = f"{instance_type} for endpoint usage"
    quota = _find_quota(service_quotas, "list_service_quotas", name)
    if quota is not None:
        return quota, "applied"
    return _find_quota(service_quotas, "list_aws_default_service_quotas", name), "AWS default"


def check_sagemaker_quota(
    report: Report, service_quotas: Any, config: ServingConfig, *, region: str
) -> None:
    need = EndpointNeed.of(config)
    check = "SageMaker quota"
    name = f"{need.instance_type} for endpoint usage"
    try:
        quota, source = find_endpoint_quota(service_quotas, need.instance_type)
    except (ClientError, BotoCoreError) as exc:
        could_not(
            report,
            check,
            f"read the quota '{name}'",
            exc,
            f"aws service-quotas list-service-quotas --service-code sagemaker --region {region} "
            f"--query \"Quotas[?QuotaName=='{name}']\"",
        )
        return
    if quota is None:
        report.add(
            check,
            "warn",
            f"no quota named '{name}' in {region}: is {need.instance_type} offered for hosting "
            "there?",
            f"list the types: aws service-quotas list-aws-default-service-quotas --service-code "
            f"sagemaker --region {region} --query \"Quotas[?ends_with(QuotaName, 'for endpoint "
            f"usage')].QuotaName\"",
        )
        return
    value = int(float(quota.get("Value", 0)))
    code = str(quota.get("QuotaCode", ""))
    fixes = (
        quota_increase_command(region, "sagemaker", code, need.update_at_peak),
        quota_console_url(region, "sagemaker", code),
    )
    shared = "the quota is shared by every endpoint of this type in the account and region"
    sizes = (
        f"min {config.min_instances}, max {config.max_instances}, initial "
        f"{config.initial_instance_count}"
    )
    rolling = config.capacity_mode == "scale_to_zero"
    how = (
        "a rolling update starts a batch of copies beside the others"
        if rolling
        else "blue/green runs a second fleet beside the first"
    )
    if value < need.create:
        report.add(
            check,
            "fail",
            f"'{name}' is {value} ({source}); creating the endpoint needs {need.create} "
            f"and a model update {need.update_at_rest} ({how})",
            *fixes,
        )
    elif value < need.update_at_rest:
        report.add(
            check,
            "fail",
            f"'{name}' is {value} ({source}): the first deploy fits, but every model update "
            f"needs {need.update_at_rest} ({how}; {sizes})",
            *fixes,
        )
    elif value < need.update_at_peak:
        report.add(
            check,
            "warn",
            f"'{name}' is {value} ({source}): an update while autoscaling runs many "
            f"instances fails and rolls back ({how}); {need.update_at_peak} covers one at "
            f"max_instances ({sizes}); {shared}",
            *fixes,
        )
    else:
        report.add(
            check,
            "ok",
            f"'{name}' is {value} ({source}), enough for {need.update_at_peak} "
            f"(an update at max_instances {config.max_instances}: {how}); {shared}",
        )

"""`make doctor`: will a deploy of this stage and model work in this account and region?

    python -m account_setup.doctor -c stage=prod -c model=digits [-c key=value ...]

Takes the same ``-c`` arguments as ``cdk deploy`` (the Makefile passes the deploy's own), builds the
deployment's config from ``cdk.json`` with the project's loader (no synth), then checks:

1. credentials and region (STS GetCallerIdentity);
2. the CDK bootstrap stack: present (``/cdk-bootstrap/<qualifier>/version``), at least the version
   the synthesized templates require, as recent as the pinned CDK CLI's template, and whether its
   CloudFormation execution role is still AdministratorAccess;
3. whether the serving stack is in a state CloudFormation can update (a failed first create
   leaves ROLLBACK_COMPLETE, which only a delete clears);
4. Lambda concurrency: what the gateway function reserves (provisioned concurrency) must fit in
   the account's unreserved concurrency without going below the floor Lambda keeps unreserved;
5. SageMaker: the "<instance type> for endpoint usage" quota against what the stage's endpoint
   needs, including the second fleet a blue/green update starts.

Each finding is ``ok``, ``warn`` (deploys, but something is off or could not be checked) or
``FAIL`` (the deploy or a routine update would fail); the exit status is 1 when any check fails,
2 on a config error, else 0. A call the credentials may not make is a warning, never a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from stacks.config import CONTEXT_ROOT, ConfigError, ServingConfig, build_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUALIFIER = "hnb659fds"
DEFAULT_TOOLKIT_STACK = "CDKToolkit"
# Where the CDK CLI deploys when no region is configured anywhere.
CDK_FALLBACK_REGION = "us-east-1"
# The synthesized templates' CheckBootstrapVersion rule refuses versions 1-5 (aws-cdk-lib's
# DefaultStackSynthesizer with file assets); tests/infra pins this against the real template.
MIN_BOOTSTRAP_VERSION = 6
# The pinned CDK CLI's own bootstrap template: `cdk bootstrap` would bring the stack to its version.
CLI_BOOTSTRAP_TEMPLATE = (
    PROJECT_ROOT / "node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml"
)
# Lambda keeps this much concurrency unreserved for functions without a reservation, or the
# whole account limit when that is smaller ("decreases account's UnreservedConcurrentExecution
# below its minimum value of [10]" on new accounts).
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
LAMBDA_UNRESERVED_FLOOR = 100
# Service Quotas' code for Lambda's "Concurrent executions" (per account and region).
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"
# botocore's error codes for "these credentials may not make this call".
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "NoSuchEntity",
}
_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"}
)

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it came out, and how to fix it."""

    check: str
    status: Status
    summary: str
    fixes: tuple[str, ...] = ()


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, summary: str, *fixes: str) -> None:
        self.findings.append(Finding(check, status, summary, tuple(f for f in fixes if f)))

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]


# --- what the stage needs, from the config ------------------------------------------------------


def lambda_reservation(config: ServingConfig) -> int:
    """Concurrency the gateway function takes out of the account's unreserved pool.

    Provisioned concurrency on the alias counts against the unreserved pool; a reserved
    concurrency on the function, when set, holds the provisioned part too, so the larger of the
    two is what leaves the pool. tests/infra checks this against the synthesized template.
    """
    return max(config.lambda_reserved_concurrency or 0, config.provisioned_concurrency)


@dataclass(frozen=True)
class EndpointNeed:
    """Instances of ``instance_type`` the endpoint needs: at rest, and during a blue/green update."""

    instance_type: str
    create: int  # the first deploy creates the variant with this many
    update_at_rest: int  # a model update while scaled in: blue plus an equally large green
    update_at_peak: int  # a model update while scaled out to max_instances

    @classmethod
    def of(cls, config: ServingConfig) -> EndpointNeed:
        at_rest = max(config.initial_instance_count, config.min_instances)
        return cls(
            instance_type=config.instance_type,
            create=config.initial_instance_count,
            update_at_rest=2 * at_rest,
            update_at_peak=2 * config.max_instances,
        )


# --- the checks -----------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _could_not(report: Report, check: str, what: str, exc: Exception, by_hand: str) -> None:
    """A call that failed without telling us the answer: a warning that says how to look."""
    if isinstance(exc, ClientError) and _error_code(exc) in _DENIED:
        reason = f"not allowed to {what} ({_error_code(exc)})"
    else:
        reason = f"could not {what}: {exc}"
    report.add(check, "warn", f"{reason}; not checked", f"check by hand: {by_hand}")


def quota_console_url(region: str, service: str, quota_code: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/servicequotas/home/services/{service}/quotas/"
        f"{quota_code}"
    )


def quota_increase_command(region: str, service: str, quota_code: str, desired: int) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {service} "
        f"--quota-code {quota_code} --desired-value {desired} --region {region}"
    )


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
            f"the credentials were refused ({_error_code(exc)}): {exc}",
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


def read_cli_bootstrap_version(path: Path = CLI_BOOTSTRAP_TEMPLATE) -> int | None:
    """The version of the bootstrap template the pinned CDK CLI ships (None without node_modules)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(r"CdkBootstrapVersion:\s*\n(?:\s+.*\n)*?\s+Value:\s*'?(\d+)'?", text)
    return int(match.group(1)) if match else None


def check_bootstrap(
    report: Report,
    ssm: Any,
    cloudformation: Any,
    *,
    region: str,
    account: str,
    qualifier: str,
    toolkit_stack: str,
    cli_version: int | None,
) -> None:
    check = "CDK bootstrap"
    parameter = f"/cdk-bootstrap/{qualifier}/version"
    bootstrap_cmd = (
        "make bootstrap"
        if qualifier == DEFAULT_QUALIFIER
        else f"make bootstrap CDK_QUALIFIER={qualifier}"
    )
    try:
        version = int(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ClientError as exc:
        if _error_code(exc) == "ParameterNotFound":
            report.add(
                check,
                "fail",
                f"account {account} is not bootstrapped in {region} (no SSM parameter {parameter})",
                f"{bootstrap_cmd}   (once per account and region; see docs/first-deploy.md)",
            )
        else:
            _could_not(
                report,
                check,
                f"read {parameter}",
                exc,
                f"aws ssm get-parameter --name {parameter} --region {region}",
            )
        return
    except (BotoCoreError, ValueError) as exc:
        _could_not(report, check, f"read {parameter}", exc, "aws ssm get-parameter ...")
        return

    if version < MIN_BOOTSTRAP_VERSION:
        report.add(
            check,
            "fail",
            f"bootstrap version {version}; the stacks need at least {MIN_BOOTSTRAP_VERSION}",
            f"{bootstrap_cmd}   (updates the bootstrap stack in place)",
        )
    elif cli_version is not None and version < cli_version:
        report.add(
            check,
            "warn",
            f"bootstrap version {version}, older than the pinned CDK CLI's {cli_version} "
            "(deploys work; newer CLI features and fixes may not)",
            f"{bootstrap_cmd}   (updates the bootstrap stack in place)",
        )
    else:
        known = "" if cli_version is not None else " (CLI not installed: not compared with it)"
        report.add(check, "ok", f"version {version}, qualifier {qualifier}{known}")

    try:
        stacks = cloudformation.describe_stacks(StackName=toolkit_stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            report.add(
                check,
                "warn",
                f"bootstrapped, but no stack named {toolkit_stack}: its execution policy is "
                "not checked",
                "pass --toolkit-stack-name if you bootstrapped with one",
            )
        else:
            _could_not(
                report,
                check,
                f"describe the {toolkit_stack} stack",
                exc,
                f"aws cloudformation describe-stacks --stack-name {toolkit_stack}",
            )
        return
    except BotoCoreError as exc:
        _could_not(report, check, f"describe {toolkit_stack}", exc, "aws cloudformation ...")
        return
    stack = stacks[0]
    status = str(stack.get("StackStatus", ""))
    if status.endswith(("_FAILED", "ROLLBACK_COMPLETE")) and status != "UPDATE_ROLLBACK_COMPLETE":
        report.add(
            check,
            "fail",
            f"the {toolkit_stack} stack is in {status}",
            f"see its events: aws cloudformation describe-stack-events --stack-name "
            f"{toolkit_stack} --region {region}; then {bootstrap_cmd}",
        )
    parameters = {
        p.get("ParameterKey"): p.get("ParameterValue", "") for p in stack.get("Parameters", [])
    }
    policies = [
        p for p in str(parameters.get("CloudFormationExecutionPolicies", "")).split(",") if p
    ]
    if not policies or any(p.endswith(":policy/AdministratorAccess") for p in policies):
        report.add(
            "CDK execution role",
            "warn",
            "CloudFormation deploys with AdministratorAccess (the bootstrap default), so "
            "whoever can deploy can do anything in the account",
            "make bootstrap   (re-bootstraps with this repo's scoped execution policies; see "
            "docs/first-deploy.md)",
        )
    else:
        names = ", ".join(p.rsplit("/", 1)[-1] for p in policies)
        report.add("CDK execution role", "ok", f"scoped to {names}")


def check_stack_state(report: Report, cloudformation: Any, config: ServingConfig) -> bool:
    """Whether the serving stack exists; a state no update can leave is a failure."""
    check = "Stack state"
    try:
        stacks = cloudformation.describe_stacks(StackName=config.stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            report.add(check, "ok", f"{config.stack_name} does not exist yet: a first deploy")
        else:
            _could_not(
                report,
                check,
                f"describe {config.stack_name}",
                exc,
                f"aws cloudformation describe-stacks --stack-name {config.stack_name}",
            )
        return False
    except BotoCoreError as exc:
        _could_not(report, check, f"describe {config.stack_name}", exc, "aws cloudformation ...")
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
        _could_not(report, check, "read the Lambda account settings", exc, by_hand)
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
            _could_not(
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
        _could_not(
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
    if value < need.create:
        report.add(
            check,
            "fail",
            f"'{name}' is {value} ({source}); creating the endpoint needs {need.create} "
            f"and a model update {need.update_at_rest} (blue/green starts a second fleet)",
            *fixes,
        )
    elif value < need.update_at_rest:
        report.add(
            check,
            "fail",
            f"'{name}' is {value} ({source}): the first deploy fits, but every model update "
            f"needs {need.update_at_rest} (blue/green runs a second fleet beside the first; "
            f"{sizes})",
            *fixes,
        )
    elif value < need.update_at_peak:
        report.add(
            check,
            "warn",
            f"'{name}' is {value} ({source}): an update while autoscaling runs more than "
            f"{value // 2} instances fails and rolls back; {need.update_at_peak} covers one at "
            f"max_instances ({sizes}); {shared}",
            *fixes,
        )
    else:
        report.add(
            check,
            "ok",
            f"'{name}' is {value} ({source}), enough for {need.update_at_peak} "
            f"(a blue/green update at max_instances {config.max_instances}); {shared}",
        )


# --- running them -----------------------------------------------------------------------------------


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


# --- command line -----------------------------------------------------------------------------------

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
_COLOUR = {"ok": "\033[32m", "warn": "\033[33m", "fail": "\033[31m"}


def render(report: Report, *, title: str, colour: bool = False, columns: int = 100) -> str:
    """The report as text: one block per finding, its fixes (commands, URLs) unwrapped below it."""
    width = max((len(f.check) for f in report.findings), default=10)
    indent = " " * (2 + 4 + 2 + width + 2)
    lines = [title, ""]
    for f in report.findings:
        mark = _MARK[f.status]
        if colour:
            mark = f"{_COLOUR[f.status]}{mark}\033[0m"
        summary = textwrap.wrap(
            f.summary,
            width=max(columns - len(indent), 40),
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.append(f"  {mark}  {f.check:<{width}}  {summary[0]}")
        lines.extend(indent + more for more in summary[1:])
        for fix in f.fixes:
            lines.append(f"  {'':4}  {'':<{width}}    -> {fix}")
    fails = sum(f.status == "fail" for f in report.findings)
    warns = sum(f.status == "warn" for f in report.findings)
    lines.append("")
    if fails:
        lines.append(
            f"{fails} blocking problem(s), {warns} warning(s): fix the FAIL lines and run "
            "`make doctor` again (SKIP_DOCTOR=1 makes `make deploy` go ahead anyway)."
        )
    elif warns:
        lines.append(f"No blocking problem; {warns} warning(s) above.")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines)


def parse_context(pairs: Iterable[str]) -> dict[str, str]:
    """``-c key=value`` arguments, as the CDK CLI takes them."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-c takes key=value, got {pair!r}")
        context[key] = value
    return context


def config_from_args(
    project_context: Mapping[str, Any], cli_context: Mapping[str, str]
) -> tuple[ServingConfig, str]:
    """The serving config `cdk deploy` would build from these `-c` arguments, and the qualifier."""
    overrides = dict(cli_context)
    qualifier = str(
        overrides.pop("@aws-cdk/core:bootstrapQualifier", "")
        or project_context.get("@aws-cdk/core:bootstrapQualifier", "")
        or os.environ.get("CDK_QUALIFIER", "")
        or DEFAULT_QUALIFIER
    )
    account = overrides.pop("account", "")
    region = overrides.pop("region", "")
    overrides.pop("for_destroy", None)
    # CDK's own keys (feature flags and the like) carry '@' or ':'; the serving config ignores them.
    overrides = {k: v for k, v in overrides.items() if "@" not in k and ":" not in k}
    config = build_config(
        project_context.get(CONTEXT_ROOT) or {}, overrides, account=account, region=region
    )
    return config, qualifier


def resolve_region(config: ServingConfig, profile_region: str | None) -> tuple[str, str]:
    """The region `cdk deploy` will use, in the CDK CLI's order, and where it came from.

    The CLI reads AWS_REGION before AWS_DEFAULT_REGION (botocore only reads the latter), then the
    profile, and falls back to us-east-1; ``-c region`` pins the stack's own environment.
    """
    if config.region:
        return config.region, "-c region"
    for name in ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name], name
    if profile_region:
        return profile_region, "your AWS profile"
    return CDK_FALLBACK_REGION, ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m account_setup.doctor",
        description="Check that this account and region can take a deploy of the chosen stage "
        "and model: credentials, CDK bootstrap, Lambda concurrency, SageMaker quota.",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the deploy's context, as for cdk (stage, model, any config key); default: "
        "cdk.json's default stage and model",
    )
    parser.add_argument(
        "--toolkit-stack-name",
        default=DEFAULT_TOOLKIT_STACK,
        help=f"the CDK bootstrap stack's name (default {DEFAULT_TOOLKIT_STACK})",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="AWS profile to check with (default: the usual chain: environment, AWS_PROFILE, ...); "
        "CI passes its read-only CDK lookup role's profile",
    )
    parser.add_argument(
        "--cdk-json", type=Path, default=PROJECT_ROOT / "cdk.json", help="default: ./cdk.json"
    )
    args = parser.parse_args(argv)

    try:
        project_context = json.loads(args.cdk_json.read_text()).get("context", {})
        config, qualifier = config_from_args(project_context, parse_context(args.context))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {args.cdk_json}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        session = boto3.Session(profile_name=args.profile)
    except BotoCoreError as exc:  # ProfileNotFound
        print(f"error: {exc}", file=sys.stderr)
        return 2
    region, region_source = resolve_region(config, session.region_name)
    session = boto3.Session(profile_name=args.profile, region_name=region)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, config=_CLIENT_CONFIG)
        return clients[service]

    report = run_checks(
        config,
        client,
        region=region,
        region_source=region_source,
        qualifier=qualifier,
        toolkit_stack=args.toolkit_stack_name,
        cli_bootstrap_version=read_cli_bootstrap_version(),
    )
    print(
        render(
            report,
            title=f"Pre-deploy checks for {config.stack_name} (stage {config.stage}, model "
            f"{config.model}) in {region}",
            colour=sys.stdout.isatty(),
            columns=shutil.get_terminal_size((100, 24)).columns,
        )
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

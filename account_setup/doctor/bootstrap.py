"""The CDK bootstrap: its version (SSM), its toolkit stack and the execution role's policies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_setup.doctor.aws_calls import could_not, error_code
from account_setup.doctor.report import Report

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_QUALIFIER = "hnb659fds"
DEFAULT_TOOLKIT_STACK = "CDKToolkit"
# The synthesized templates' CheckBootstrapVersion rule refuses versions 1-5 (aws-cdk-lib's
# DefaultStackSynthesizer with file assets); tests/infra pins this against the real template.
MIN_BOOTSTRAP_VERSION = 6
# The pinned CDK CLI's own bootstrap template: `cdk bootstrap` would bring the stack to its version.
CLI_BOOTSTRAP_TEMPLATE = (
    _PROJECT_ROOT / "node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml"
)
_CHECK = "CDK bootstrap"


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
    """The bootstrap version, then the toolkit stack's state and execution policies."""
    bootstrap_cmd = (
        "make bootstrap"
        if qualifier == DEFAULT_QUALIFIER
        else f"make bootstrap CDK_QUALIFIER={qualifier}"
    )
    version = _read_version(
        report,
        ssm,
        region=region,
        account=account,
        qualifier=qualifier,
        bootstrap_cmd=bootstrap_cmd,
    )
    if version is None:
        return
    _judge_version(
        report, version, qualifier=qualifier, cli_version=cli_version, bootstrap_cmd=bootstrap_cmd
    )
    stack = _describe_toolkit_stack(report, cloudformation, toolkit_stack)
    if stack is None:
        return
    _check_toolkit_status(
        report, stack, toolkit_stack=toolkit_stack, region=region, bootstrap_cmd=bootstrap_cmd
    )
    _check_execution_policies(report, stack)


def _read_version(
    report: Report, ssm: Any, *, region: str, account: str, qualifier: str, bootstrap_cmd: str
) -> int | None:
    """The bootstrap version from SSM; None (and a finding) when absent or unreadable."""
    parameter = f"/cdk-bootstrap/{qualifier}/version"
    try:
        return int(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            report.add(
                _CHECK,
                "fail",
                f"account {account} is not bootstrapped in {region} (no SSM parameter {parameter})",
                f"{bootstrap_cmd}   (once per account and region; see docs/first-deploy.md)",
            )
        else:
            could_not(
                report,
                _CHECK,
                f"read {parameter}",
                exc,
                f"aws ssm get-parameter --name {parameter} --region {region}",
            )
    except (BotoCoreError, ValueError) as exc:
        could_not(report, _CHECK, f"read {parameter}", exc, "aws ssm get-parameter ...")
    return None


def _judge_version(
    report: Report, version: int, *, qualifier: str, cli_version: int | None, bootstrap_cmd: str
) -> None:
    if version < MIN_BOOTSTRAP_VERSION:
        report.add(
            _CHECK,
            "fail",
            f"bootstrap version {version}; the stacks need at least {MIN_BOOTSTRAP_VERSION}",
            f"{bootstrap_cmd}   (updates the bootstrap stack in place)",
        )
    elif cli_version is not None and version < cli_version:
        report.add(
            _CHECK,
            "warn",
            f"bootstrap version {version}, older than the pinned CDK CLI's {cli_version} "
            "(deploys work; newer CLI features and fixes may not)",
            f"{bootstrap_cmd}   (updates the bootstrap stack in place)",
        )
    else:
        known = "" if cli_version is not None else " (CLI not installed: not compared with it)"
        report.add(_CHECK, "ok", f"version {version}, qualifier {qualifier}{known}")


def _describe_toolkit_stack(
    report: Report, cloudformation: Any, toolkit_stack: str
) -> dict[str, Any] | None:
    """The bootstrap stack's description; None (and a finding) when absent or unreadable."""
    try:
        return dict(cloudformation.describe_stacks(StackName=toolkit_stack)["Stacks"][0])
    except ClientError as exc:
        if "does not exist" in str(exc):
            report.add(
                _CHECK,
                "warn",
                f"bootstrapped, but no stack named {toolkit_stack}: its execution policy is "
                "not checked",
                "pass --toolkit-stack-name if you bootstrapped with one",
            )
        else:
            could_not(
                report,
                _CHECK,
                f"describe the {toolkit_stack} stack",
                exc,
                f"aws cloudformation describe-stacks --stack-name {toolkit_stack}",
            )
    except BotoCoreError as exc:
        could_not(report, _CHECK, f"describe {toolkit_stack}", exc, "aws cloudformation ...")
    return None


def _check_toolkit_status(
    report: Report, stack: dict[str, Any], *, toolkit_stack: str, region: str, bootstrap_cmd: str
) -> None:
    status = str(stack.get("StackStatus", ""))
    if status.endswith(("_FAILED", "ROLLBACK_COMPLETE")) and status != "UPDATE_ROLLBACK_COMPLETE":
        report.add(
            _CHECK,
            "fail",
            f"the {toolkit_stack} stack is in {status}",
            f"see its events: aws cloudformation describe-stack-events --stack-name "
            f"{toolkit_stack} --region {region}; then {bootstrap_cmd}",
        )


def _check_execution_policies(report: Report, stack: dict[str, Any]) -> None:
    """Whether CloudFormation deploys with AdministratorAccess, the bootstrap default."""
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

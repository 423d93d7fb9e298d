"""The command line: ``-c`` arguments to a serving config, the CDK CLI's region, the report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError

from account_setup.doctor.aws_calls import CLIENT_CONFIG
from account_setup.doctor.bootstrap import (
    DEFAULT_QUALIFIER,
    DEFAULT_TOOLKIT_STACK,
    read_cli_bootstrap_version,
)
from account_setup.doctor.checks import run_checks
from account_setup.doctor.report import render
from stacks.config import CONTEXT_ROOT, ConfigError, ServingConfig, build_config, parse_context

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Where the CDK CLI deploys when no region is configured anywhere.
CDK_FALLBACK_REGION = "us-east-1"


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
            clients[service] = session.client(service, config=CLIENT_CONFIG)
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

#!/usr/bin/env python3
"""The CDK app: one serving stack for the chosen stage and model.

    cdk synth                               # dev stage, default model (cdk.json)
    cdk deploy -c stage=prod -c model=digits
    cdk synth -c instance_type=ml.c5.xlarge  # any config key, see README "Configuration"
    cdk deploy GitHubOidc -c github_repo=owner/name   # once: the CI roles (docs/github-actions.md)

Account and region come from the CDK environment (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION, set by
the CLI from your AWS profile) or from `-c account=... -c region=...`; synth makes no AWS calls.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.artifact import resolve_model_source
from stacks.config import CONTEXT_ROOT, ServingConfig, build_config
from stacks.github_oidc import DEFAULT_CDK_QUALIFIER, GitHubOidcStack
from stacks.serving_stack import ServingStack

PROJECT_ROOT = Path(__file__).resolve().parent
# Context keys that select what to synthesize rather than configure the serving stack.
GITHUB_KEYS = (
    "github_repo",
    "github_branches",
    "github_environments",
    "oidc_provider_arn",
    "cdk_qualifier",
    "training_role_arn",
    "training_bucket_name",
)
FOR_DESTROY = "for_destroy"
# `cdk destroy` synthesizes too; the artifact is irrelevant then, so a missing one must not block it.
_DESTROY_PLACEHOLDER = {
    "model_data_url": "s3://artifact-not-needed-for-destroy/model.tar.gz",
    "framework": "pytorch",
    "framework_version": "1.4",
}


def _cli_overrides(app: cdk.App) -> dict[str, Any]:
    """Flat context keys given with `cdk -c key=value` (CDK's own keys contain '@' or ':')."""
    raw = os.environ.get("CDK_CONTEXT_JSON")
    keys: set[str] = set()
    if raw:
        keys = {k for k in json.loads(raw) if "@" not in k and ":" not in k}
    keys -= {CONTEXT_ROOT, "account", "region", FOR_DESTROY, *GITHUB_KEYS}
    return {k: app.node.try_get_context(k) for k in sorted(keys)}


def load_config(app: cdk.App, overrides: dict[str, Any] | None = None) -> ServingConfig:
    account = str(app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT", ""))
    region = str(app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION", ""))
    return build_config(
        app.node.try_get_context(CONTEXT_ROOT) or {},
        _cli_overrides(app) if overrides is None else overrides,
        account=account,
        region=region,
    )


def build_app(app: cdk.App, overrides: dict[str, Any] | None = None) -> ServingStack:
    """Add the serving stack to ``app``; ``overrides`` replaces the `-c key=value` context keys."""
    config = load_config(app, overrides)
    destroying = str(app.node.try_get_context(FOR_DESTROY)).lower() == "true"
    artifact = PROJECT_ROOT / config.resolved_artifact_path
    if destroying and not config.model_data_url and not artifact.is_file():
        config = config.replace(**_DESTROY_PLACEHOLDER)
    model_source = resolve_model_source(config, PROJECT_ROOT)
    stack = ServingStack(
        app,
        config.stack_name,
        config=config,
        model_source=model_source,
        env=cdk.Environment(account=config.account or None, region=config.region or None),
        description=f"ML serving: model {config.model}, stage {config.stage} "
        f"({model_source.framework} {model_source.framework_version})",
        termination_protection=config.stage == "prod",
    )
    cdk.Tags.of(stack).add("project", "ml-serving")
    cdk.Tags.of(stack).add("stage", config.stage)
    cdk.Tags.of(stack).add("model", config.model)
    # Every synth runs the AwsSolutions security checks; a finding fails the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def _context_list(app: cdk.App, key: str, default: tuple[str, ...]) -> list[str]:
    value = app.node.try_get_context(key)
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def build_github_oidc(app: cdk.App) -> GitHubOidcStack | None:
    """The one-time CI stack, when `-c github_repo=owner/name` asks for it (instead of serving)."""
    repo = app.node.try_get_context("github_repo")
    if not repo:
        return None
    stack = GitHubOidcStack(
        app,
        "GitHubOidc",
        github_repo=str(repo),
        github_branches=_context_list(app, "github_branches", ("main",)),
        github_environments=_context_list(app, "github_environments", ("dev", "prod")),
        oidc_provider_arn=app.node.try_get_context("oidc_provider_arn") or None,
        cdk_qualifier=str(app.node.try_get_context("cdk_qualifier") or DEFAULT_CDK_QUALIFIER),
        training_role_arn=app.node.try_get_context("training_role_arn") or None,
        training_bucket_name=app.node.try_get_context("training_bucket_name") or None,
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def project_context() -> dict[str, Any]:
    """cdk.json's context, for runs of `python app.py` without the CDK CLI (which passes it itself)."""
    if "CDK_CONTEXT_JSON" in os.environ:
        return {}
    return dict(json.loads((PROJECT_ROOT / "cdk.json").read_text()).get("context", {}))


def main() -> None:
    app = cdk.App(context=project_context())
    try:
        if build_github_oidc(app) is None:
            build_app(app)
    except ValueError as exc:  # ConfigError included: bad config, not a bug
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()

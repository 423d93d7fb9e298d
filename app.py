#!/usr/bin/env python3
"""The CDK app: one serving stack for the chosen stage and model.

    cdk synth                               # dev stage, default model (cdk.json)
    cdk deploy -c stage=prod -c model=digits
    cdk synth -c instance_type=ml.c5.xlarge  # any config key, see README "Configuration"

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
from stacks.config import CONTEXT_ROOT, ConfigError, ServingConfig, build_config
from stacks.serving_stack import ServingStack

PROJECT_ROOT = Path(__file__).resolve().parent


def _cli_overrides(app: cdk.App) -> dict[str, Any]:
    """Flat context keys given with `cdk -c key=value` (CDK's own keys contain '@' or ':')."""
    raw = os.environ.get("CDK_CONTEXT_JSON")
    keys: set[str] = set()
    if raw:
        keys = {k for k in json.loads(raw) if "@" not in k and ":" not in k}
    keys -= {CONTEXT_ROOT, "account", "region"}
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


def project_context() -> dict[str, Any]:
    """cdk.json's context, for runs of `python app.py` without the CDK CLI (which passes it itself)."""
    if "CDK_CONTEXT_JSON" in os.environ:
        return {}
    return dict(json.loads((PROJECT_ROOT / "cdk.json").read_text()).get("context", {}))


def main() -> None:
    app = cdk.App(context=project_context())
    try:
        build_app(app)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()

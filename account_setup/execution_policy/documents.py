"""The statements packed into managed policy documents, the committed copies, and every stack
synthesized to generate them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from account_setup.execution_policy.statements import SERVING_PREFIX, statements

POLICY_DIR = Path(__file__).resolve().parent.parent / "cdk-execution-policy"
# IAM's limit for a managed policy document, counted without whitespace.
MAX_POLICY_CHARS = 6144
# A role holds at most 10 managed policies by default; leave room for ones the owner adds.
MAX_POLICIES = 4


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against MAX_POLICY_CHARS (whitespace excluded)."""
    return len(json.dumps(document, separators=(",", ":")))


def documents(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The statements packed, in order, into as few managed policies as IAM's size limit allows."""
    packed: list[list[dict[str, Any]]] = [[]]
    for statement in statements(templates):
        candidate = {"Version": "2012-10-17", "Statement": [*packed[-1], statement]}
        if packed[-1] and policy_size(candidate) > MAX_POLICY_CHARS:
            packed.append([])
        packed[-1].append(statement)
    return {
        f"part-{i}": {"Version": "2012-10-17", "Statement": group}
        for i, group in enumerate(packed, start=1)
    }


def load_documents(folder: Path = POLICY_DIR) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def write_documents(docs: Mapping[str, Mapping[str, Any]], folder: Path = POLICY_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in docs:
            stale.unlink()
    for name, document in docs.items():
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")


def synthesized_templates() -> dict[str, dict[str, Any]]:
    """Every stack this project deploys: each stage and model in cdk.json, and GitHubOidc."""
    import aws_cdk as cdk

    import app as cdk_app
    from stacks.github_oidc import GitHubOidcStack

    account, region = "123456789012", "us-east-1"
    context = json.loads((cdk_app.PROJECT_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(context={**context, "account": account, "region": region})
    serving = context[cdk_app.CONTEXT_ROOT]
    for stage in serving["stages"]:
        for model in serving["models"]:
            # An S3 artifact: the stack's resources do not depend on where the model comes from.
            cdk_app.build_app(
                app,
                overrides={
                    "stage": stage,
                    "model": model,
                    "model_data_url": "s3://example-models/model.tar.gz",
                    "framework": "pytorch",
                    "framework_version": "1.4",
                },
            )
    GitHubOidcStack(
        app,
        "GitHubOidc",
        github_repo="example-org/ml-serving",
        training_role_arn=f"arn:aws:iam::{account}:role/{SERVING_PREFIX}dev-digits-TrainingRole",
        training_bucket_name="mlserving-dev-digits-bucket",
        env=cdk.Environment(account=account, region=region),
    )
    assembly = app.synth()
    return {stack.stack_name: dict(stack.template) for stack in assembly.stacks}

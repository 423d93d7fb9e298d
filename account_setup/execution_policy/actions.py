"""The actions the stacks' templates need: each resource type's CloudFormation handler permissions
(the provider schemas cfn-lint ships) less ``EXCLUDED``, plus what templates need beyond resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Actions a handler lists for features these stacks never configure; each reason says which.
EXCLUDED: dict[str, str] = {
    "s3tables:": "S3 Tables (bucket metadata tables) are not configured",
    "s3:CreateBucketMetadataTableConfiguration": "bucket metadata tables are not configured",
    "s3:DeleteBucketMetadataTableConfiguration": "bucket metadata tables are not configured",
    "s3:UpdateBucketMetadata": "bucket metadata tables are not configured",
    "s3:REST.PUT.OBJECT": "not an IAM action (listed by AWS::Logs::LogGroup's schema)",
    "s3files:": "Lambda file-system mounts are not used",
    "elasticfilesystem:": "Lambda file-system mounts are not used",
    "firehose:": "no log delivery to Firehose",
    "logs:CreateLogDelivery": "no vended log delivery is configured",
    "codedeploy:": "the Lambda alias has no CodeDeploy traffic shifting",
    "lambda:PassCapacityProvider": "Lambda managed-instance capacity providers are not used",
    "iam:PutUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:DeleteUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:GetUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:PutGroupPolicy": "the stacks attach policies to roles only, never to groups",
    "iam:DeleteGroupPolicy": "the stacks attach policies to roles only, never to groups",
    "iam:GetGroupPolicy": "the stacks attach policies to roles only, never to groups",
}

# Needs of a template beyond its resources' handlers.
CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)  # CloudFormation invokes the provider
SSM_PARAMETER_ACTIONS = ("ssm:GetParameters",)  # resolves AWS::SSM::Parameter::Value<...>
EXTRAS = (*CUSTOM_RESOURCE_ACTIONS, *SSM_PARAMETER_ACTIONS)
HANDLERS = ("create", "read", "update", "delete")


def is_excluded(action: str) -> bool:
    """Whether ``action`` falls under an EXCLUDED key (each key is an action or action prefix)."""
    return any(action.startswith(key) for key in EXCLUDED)


def resource_types(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Every resource type in the templates, with the stacks that use it."""
    found: dict[str, set[str]] = {}
    for stack, template in templates.items():
        for resource in template.get("Resources", {}).values():
            found.setdefault(str(resource["Type"]), set()).add(stack)
    return found


def handler_permissions(resource_type: str, region: str = "us-east-1") -> set[str]:
    """What CloudFormation's handler for ``resource_type`` declares it needs (create to delete)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # dev tooling: only to generate and test

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    handlers = schema.get("handlers", {})
    return {p for h in HANDLERS for p in handlers.get(h, {}).get("permissions", [])}


def required_actions(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Each action the templates need, with the resource types (or template features) needing it."""
    needed: dict[str, set[str]] = {}
    for resource_type in sorted(resource_types(templates)):
        if (
            resource_type.startswith("Custom::")
            or resource_type == "AWS::CloudFormation::CustomResource"
        ):
            actions: Iterable[str] = CUSTOM_RESOURCE_ACTIONS
        else:
            actions = (a for a in handler_permissions(resource_type) if not is_excluded(a))
        for action in actions:
            needed.setdefault(action, set()).add(resource_type)
    for template in templates.values():
        if any(
            str(p.get("Type", "")).startswith("AWS::SSM::Parameter::Value")
            for p in template.get("Parameters", {}).values()
        ):
            for action in SSM_PARAMETER_ACTIONS:
                needed.setdefault(action, set()).add("SSM parameter types (BootstrapVersion)")
    return needed


def passed_role_services(templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The services the templates' roles trust: the only ones CloudFormation may pass them to."""
    services: set[str] = set()
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            trust = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            for statement in trust:
                service = statement.get("Principal", {}).get("Service", [])
                services.update([service] if isinstance(service, str) else service)
    return sorted(services)


def attached_managed_policies(templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The managed policies the templates attach to roles, as ARNs in the `aws` partition."""
    arns: set[str] = set()
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for arn in resource["Properties"].get("ManagedPolicyArns", []):
                arns.add(render_partition(arn))
    return sorted(arns)


def render_partition(value: Any) -> str:
    """An ARN from a template, with CDK's partition token written as `aws`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return str(sep).join(render_partition(p) for p in parts)
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    raise ValueError(f"cannot render {value!r} as an ARN: name the policy by a plain ARN")

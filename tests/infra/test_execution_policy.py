"""The CloudFormation execution policies cover every stack this project deploys, and no more.

The stacks are synthesized once (each stage and model in cdk.json, and GitHubOidc); the resource
types come from those templates, so a construct that adds a type fails here until
`python -m account_setup.execution_policy generate` has covered it.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from account_setup import execution_policy as ep

ROOT_CONTEXT = json.loads((ep.POLICY_DIR.parents[1] / "cdk.json").read_text())["context"]
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return ep.synthesized_templates()


@pytest.fixture(scope="module")
def committed() -> dict[str, dict[str, Any]]:
    return ep.load_documents()


def allowed(
    docs: dict[str, dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> bool:
    """IAM's answer for one request under these Allow-only documents (the condition operators used)."""
    context = context or {}
    for document in docs.values():
        for statement in document["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            if action not in ([actions] if isinstance(actions, str) else actions):
                continue
            patterns = [resources] if isinstance(resources, str) else resources
            if not any(fnmatch.fnmatchcase(resource, p) for p in patterns):
                continue
            if all(
                operator in ("StringEquals", "ArnEquals")
                and key in context
                and context[key] in ([values] if isinstance(values, str) else values)
                for operator, tests in statement.get("Condition", {}).items()
                for key, values in tests.items()
            ):
                return True
    return False


def all_actions(docs: dict[str, dict[str, Any]]) -> set[str]:
    return {a for d in docs.values() for s in d["Statement"] for a in s["Action"]}


def test_every_stage_and_model_and_the_github_stack_are_synthesized(templates):
    serving = ROOT_CONTEXT["ml-serving"]
    expected = {f"MlServing-{s}-{m}" for s in serving["stages"] for m in serving["models"]}
    assert set(templates) == expected | {"GitHubOidc"}


def test_the_committed_documents_are_what_generate_writes(templates, committed):
    # Fails when a stack changes what it creates: run
    #   python -m account_setup.execution_policy generate
    # and review the diff of account_setup/cdk-execution-policy/ before committing it.
    assert committed == ep.documents(templates)


def test_every_resource_type_maps_to_allowed_actions(templates, committed):
    granted = all_actions(committed)
    for resource_type in sorted(ep.resource_types(templates)):
        if resource_type.startswith("Custom::"):
            needed = set(ep.CUSTOM_RESOURCE_ACTIONS)
        else:
            needed = {a for a in ep.handler_permissions(resource_type) if not ep.is_excluded(a)}
            # Every type the stacks use has a handler that declares its permissions.
            assert needed, f"{resource_type}: no handler permissions in its resource schema"
        missing = needed - granted
        assert not missing, f"{resource_type} needs {sorted(missing)}: run ... generate"


def test_the_core_actions_of_each_service_the_stacks_use_are_granted(committed):
    # Spot checks in plain words, independent of the schemas.
    granted = all_actions(committed)
    for action in (
        "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateModel",
        "lambda:CreateFunction",
        "lambda:PutProvisionedConcurrencyConfig",
        "apigateway:POST",
        "application-autoscaling:RegisterScalableTarget",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:PutDashboard",
        "sns:CreateTopic",
        "kms:CreateKey",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "s3:CreateBucket",
        "s3:PutBucketPolicy",
        "iam:CreateRole",
        "iam:PassRole",
        "iam:CreateOpenIDConnectProvider",
        "ssm:GetParameters",
        "lambda:InvokeFunction",
    ):
        assert action in granted, action


def test_no_wildcard_actions_and_allow_only(committed):
    for name, document in committed.items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow" and "NotAction" not in statement, name
            assert "NotResource" not in statement, name
            for action in statement["Action"]:
                assert "*" not in action and "?" not in action, (name, action)
                assert action == action.strip() and action.count(":") == 1, (name, action)


def test_nothing_is_granted_that_no_stack_needs(templates, committed):
    needed = ep.required_actions(templates)
    extra = all_actions(committed) - set(needed)
    assert not extra, f"granted but needed by no resource type: {sorted(extra)}"


def test_each_document_fits_iams_size_limit(committed):
    assert 1 <= len(committed) <= ep.MAX_POLICIES
    for name, document in committed.items():
        assert ep.policy_size(document) <= ep.MAX_POLICY_CHARS, name
        sids = [s["Sid"] for s in document["Statement"]]
        assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids), name


# --- scoping: what a deploy through this role can and cannot touch -------------------------------


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def test_iam_is_limited_to_the_stacks_roles(committed):
    mine = role("MlServing-prod-digits-EndpointExecutionRoleAB12-Xy9")
    github = role("GitHubOidc-DeployRole1234-AbC")
    other = role("OrganizationAccountAccessRole")
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:DeleteRole",
        "iam:UpdateAssumeRolePolicy",
    ):
        assert allowed(committed, action, mine), action
        assert allowed(committed, action, github), action
        assert not allowed(committed, action, other), action
    assert not allowed(committed, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x")
    assert not allowed(committed, "iam:PutUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/x")


def test_only_the_managed_policies_the_stacks_use_can_be_attached(templates, committed):
    mine = role("MlServing-dev-digits-ApiCloudWatchRole-1")
    used = ep.attached_managed_policies(templates)
    assert used == ["arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]
    assert allowed(committed, "iam:AttachRolePolicy", mine, {"iam:PolicyARN": used[0]})
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert not allowed(committed, "iam:AttachRolePolicy", mine, {"iam:PolicyARN": admin})


def test_roles_are_passed_only_to_the_services_that_trust_them(templates, committed):
    mine = role("MlServing-dev-digits-GatewayFunctionServiceRole-1")
    services = ep.passed_role_services(templates)
    assert {"lambda.amazonaws.com", "sagemaker.amazonaws.com"} <= set(services)
    for service in services:
        assert allowed(committed, "iam:PassRole", mine, {"iam:PassedToService": service})
    for service in ("ec2.amazonaws.com", "cloudformation.amazonaws.com", "glue.amazonaws.com"):
        assert not allowed(committed, "iam:PassRole", mine, {"iam:PassedToService": service})
    assert not allowed(
        committed, "iam:PassRole", role("Admin"), {"iam:PassedToService": "lambda.amazonaws.com"}
    )


def test_functions_and_buckets_are_the_stacks_own(committed):
    fn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:"
    assert allowed(
        committed, "lambda:UpdateFunctionCode", fn + "MlServing-prod-digits-GatewayFunction-Ab"
    )
    assert allowed(
        committed,
        "lambda:PutProvisionedConcurrencyConfig",
        fn + "MlServing-prod-digits-Gateway-Ab:live",
    )
    assert not allowed(committed, "lambda:DeleteFunction", fn + "billing-exporter")
    assert not allowed(committed, "lambda:InvokeFunction", fn + "billing-exporter")
    assert allowed(
        committed, "s3:DeleteBucket", "arn:aws:s3:::mlserving-dev-digits-storagebucket-1a"
    )
    assert not allowed(committed, "s3:DeleteBucket", "arn:aws:s3:::company-backups")
    assert not allowed(committed, "s3:PutBucketPolicy", "arn:aws:s3:::company-backups")
    # Lambda reads its code from the CDK asset bucket, nothing else outside the stacks
    assets = f"arn:aws:s3:::cdk-hnb659fds-assets-{ACCOUNT}-eu-west-1/abc.zip"
    assert allowed(committed, "s3:GetObject", assets)
    assert not allowed(committed, "s3:GetObject", "arn:aws:s3:::company-backups/payroll.csv")


def test_only_the_projects_keys_can_be_deleted_or_repolicied(templates, committed):
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    tag, value = ep.PROJECT_TAG
    for action in sorted(ep.KMS_DESTRUCTIVE):
        assert allowed(committed, action, key, {f"aws:ResourceTag/{tag}": value}), action
        assert not allowed(committed, action, key), action
    # So every key the stacks create must carry the tag, or CloudFormation could not delete it.
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::KMS::Key":
                assert {"Key": tag, "Value": value} in resource["Properties"].get("Tags", []), stack


# --- left-out actions belong to features no template uses ------------------------------------------

# Resource properties that would need an EXCLUDED action.
_EXCLUDED_FEATURES = {
    "AWS::S3::Bucket": ("MetadataTableConfiguration", "MetadataConfiguration"),
    "AWS::Lambda::Function": ("FileSystemConfigs", "CapacityProviderConfig"),
    "AWS::IAM::Policy": ("Users", "Groups"),
}


def test_the_left_out_actions_are_for_features_no_template_uses(templates):
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            for prop in _EXCLUDED_FEATURES.get(resource["Type"], ()):
                assert prop not in resource.get("Properties", {}), (stack, logical_id, prop)
            # CodeDeploy traffic shifting on the alias would need codedeploy:* actions.
            assert "CodeDeployLambdaAliasUpdate" not in resource.get("UpdatePolicy", {}), logical_id
    for key, reason in ep.EXCLUDED.items():
        assert reason and ":" in key, key

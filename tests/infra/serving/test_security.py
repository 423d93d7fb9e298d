"""Security properties of the serving stack: exact IAM statements, bucket hardening, nag, lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from tests.infra.serving.conftest import ACCOUNT, REGION, project_context

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _role_policies(template: Template, description_prefix: str) -> list[dict]:
    """Inline policy statements of the one role whose Description starts with the prefix."""
    roles = template.find_resources(
        "AWS::IAM::Role",
        {"Properties": {"Description": Match.string_like_regexp(f"^{description_prefix}")}},
    )
    assert len(roles) == 1, (
        f"expected one role described {description_prefix!r}, found {list(roles)}"
    )
    (role,) = roles.values()
    assert "ManagedPolicyArns" not in role["Properties"], "no AWS managed policies on this role"
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _by_sid(statements: list[dict]) -> dict[str, dict]:
    return {s["Sid"]: s for s in statements}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def test_execution_role_reads_only_the_artifact_pulls_only_its_image(dev):
    stack, template = dev
    statements = _by_sid(_role_policies(template, "SageMaker execution role"))
    assert set(statements) == {
        "ReadModelArtifact",
        "PullServingImage",
        "EcrLogin",
        "WriteEndpointLogs",
        "PublishEndpointMetrics",
        "UseVolumeKey",
    }
    assert statements["ReadModelArtifact"]["Action"] == "s3:GetObject"
    assert statements["ReadModelArtifact"]["Resource"] == (
        "arn:aws:s3:::my-models-bucket/digits/v3/model.tar.gz"
    )
    assert sorted(statements["PullServingImage"]["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statements["PullServingImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:763104351884:repository/ray"
    )
    # The only wildcards: GetAuthorizationToken (no resource-level permissions) and PutMetricData
    # (limited by namespace instead).
    assert statements["EcrLogin"] == {
        "Sid": "EcrLogin",
        "Action": "ecr:GetAuthorizationToken",
        "Effect": "Allow",
        "Resource": "*",
    }
    assert statements["PublishEndpointMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }
    logs_resource = json.dumps(statements["WriteEndpointLogs"]["Resource"])
    assert "EndpointLogs" in logs_resource and "Arn" in logs_resource
    wildcard = [s["Sid"] for s in statements.values() if "*" in _as_list(s["Resource"])]
    assert sorted(wildcard) == ["EcrLogin", "PublishEndpointMetrics"]
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/aws/sagemaker/Endpoints/mlserving-dev-digits-endpoint",
            "RetentionInDays": 30,
        },
    )


def test_gateway_lambda_may_only_invoke_this_endpoint(dev):
    _, template = dev
    statements = _by_sid(_role_policies(template, "Gateway Lambda"))
    assert set(statements) == {"InvokeThisEndpoint", "WriteOwnLogs"}
    endpoint_id = next(iter(template.find_resources("AWS::SageMaker::Endpoint")))
    assert statements["InvokeThisEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"
    assert statements["InvokeThisEndpoint"]["Resource"] == {"Ref": endpoint_id}
    assert sorted(statements["WriteOwnLogs"]["Action"]) == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    # The only other grant: X-Ray traces (added by tracing=ACTIVE), which have no resource ARNs.
    policies = template.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"PolicyName": Match.string_like_regexp("^GatewayRoleDefaultPolicy")}},
    )
    (policy,) = policies.values()
    (xray,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(xray["Action"]) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_client_role_only_invokes_the_endpoint(prod, iam_auth):
    _, template = prod
    statements = _by_sid(_role_policies(template, "May only invoke"))
    assert set(statements) == {"InvokeThisEndpoint"}
    assert statements["InvokeThisEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Description": "May only invoke this model's endpoint",
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {"Principal": {"AWS": "arn:aws:iam::210987654321:role/batch-scorer"}}
                    )
                ]
            },
        },
    )
    template.has_output("ClientRoleArn", {})
    # With IAM auth on the API, the client role may also call the two routes, nothing else.
    _, iam_template = iam_auth
    iam_statements = _by_sid(_role_policies(iam_template, "May only invoke"))
    assert iam_statements["CallThisApi"]["Action"] == "execute-api:Invoke"
    routes = json.dumps(iam_statements["CallThisApi"]["Resource"])
    assert "/POST/predict" in routes and "/GET/health" in routes


def test_no_role_anywhere_has_full_access_or_service_wildcards(dev, prod, iam_auth):
    for _, template in (dev, prod, iam_auth):
        body = json.dumps(template.to_json())
        assert "FullAccess" not in body
        for statement in _all_statements(template):
            for action in _as_list(statement["Action"]):
                assert not action.endswith(":*") and action != "*", statement


def _all_statements(template: Template) -> list[dict]:
    statements = []
    for role in template.find_resources("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_bucket_is_encrypted_private_versioned_logged_and_tls_only(dev):
    _, template = dev
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {
                "LogFilePrefix": "bucket/",
                "DestinationBucketName": Match.any_value(),
            },
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    )
                ]
            },
        },
    )
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), statements
    for bucket in template.find_resources("AWS::S3::Bucket").values():
        assert "AccessControl" not in bucket["Properties"], "no ACLs: ownership enforced"


def test_dev_destroy_removes_data_prod_retains_it(dev, prod):
    _, dev_template = dev
    _, prod_template = prod
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        for name, resource in dev_template.find_resources(kind).items():
            assert resource["DeletionPolicy"] == "Delete", (kind, name)
        for name, resource in prod_template.find_resources(kind).items():
            assert resource["DeletionPolicy"] == "Retain", (kind, name)
    assert len(dev_template.find_resources("Custom::S3AutoDeleteObjects")) == 2
    assert prod_template.find_resources("Custom::S3AutoDeleteObjects") == {}


def test_cdk_nag_runs_on_every_synth_and_blocks_findings():
    # Given the real app with its AwsSolutions checks, when someone adds an unencrypted,
    # unlogged bucket, then synth fails instead of producing a template.
    app = cdk.App(context={**project_context(), "account": ACCOUNT, "region": REGION})
    import app as cdk_app

    stack = cdk_app.build_app(
        app,
        overrides={
            "model_data_url": "s3://b-bucket/m/model.tar.gz",
            "framework": "pytorch",
            "framework_version": "1.4",
        },
    )
    s3.CfnBucket(stack, "CarelessBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed.*server access logs disabled"):
        app.synth()


@pytest.fixture(scope="module")
def synthesized_dir(tmp_path_factory):
    """`python app.py` as the CDK CLI runs it: context from the CLI, output into a folder."""
    out = tmp_path_factory.mktemp("cdk.out")
    context = {
        **project_context(),
        "model_data_url": "s3://my-models-bucket/digits/v3/model.tar.gz",
        "framework": "pytorch",
        "framework_version": "1.4",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        env=_env(out, context),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _env(out, context):
    import os

    return {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_DEFAULT_ACCOUNT": ACCOUNT,
        "CDK_DEFAULT_REGION": REGION,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


def test_cfn_lint_is_clean_on_the_synthesized_template(synthesized_dir):
    template = synthesized_dir / "MlServing-dev-digits.template.json"
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(template)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_nag_acknowledgment_is_narrow_and_reasoned(synthesized_dir):
    # Each acknowledgment sits on one resource, names one rule (IAM5 with its finding), and says
    # why; the full list is pinned here so a new one is a reviewed change.
    metadata = json.loads((synthesized_dir / "MlServing-dev-digits.metadata.json").read_text())
    acknowledged: dict[str, set[str]] = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] != "aws:cdk:acknowledged-rules":
                continue
            for rule, reason in entry["data"].items():
                assert len(reason) >= 40, (path, rule, reason)
                # Drop the hash of logical ids (<GatewayLogs1B6C1D47.Arn> -> <GatewayLogs.Arn>).
                rule_id = re.sub(r"[0-9A-F]{8}\.Arn>", ".Arn>", rule.removeprefix("Annotation::"))
                acknowledged.setdefault(rule_id, set()).add(path)
    # The endpoint's, the gateway's and the training role.
    assert path_count(acknowledged, "AwsSolutions-IAM5[Resource::*]") == 3
    assert set(acknowledged) == {
        "AwsSolutions-S1",
        "AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions-IAM5[Resource::<EndpointLogs.Arn>]",
        "AwsSolutions-IAM5[Resource::<GatewayLogs.Arn>]",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "AwsSolutions-L1",
        "AwsSolutions-APIG3",
        "AwsSolutions-APIG4",
        "AwsSolutions-COG4",
        # The training role: its own prefixes of the bucket and SageMaker's training log group.
        "AwsSolutions-IAM5[Resource::<StorageBucket.Arn>/training/input/*]",
        "AwsSolutions-IAM5[Resource::<StorageBucket.Arn>/training/jobs/*]",
        "AwsSolutions-IAM5[Resource::<StorageBucket.Arn>/training/checkpoints/*]",
        "AwsSolutions-IAM5[Resource::arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:*]",
    }, sorted(acknowledged)
    assert all(not path.endswith("-digits") for paths in acknowledged.values() for path in paths), (
        "acknowledgments sit on resources, never on the whole stack"
    )


def path_count(acknowledged: dict[str, set[str]], rule: str) -> int:
    return len(acknowledged.get(rule, ()))

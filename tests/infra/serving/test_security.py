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
        "ReadModelVersions",
        "PullServingImage",
        "EcrLogin",
        "WriteEndpointLogs",
        "PublishEndpointMetrics",
        "UseVolumeKey",
    }
    # Every version of the model (s3://my-models-bucket/digits/v3/model.tar.gz lies in
    # digits/v3/), so a rollback can start the previous one.
    assert statements["ReadModelVersions"]["Action"] == "s3:GetObject"
    assert statements["ReadModelVersions"]["Resource"] == "arn:aws:s3:::my-models-bucket/digits/*"
    assert sorted(statements["PullServingImage"]["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statements["PullServingImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:763104351884:repository/ray"
    )
    # The volume is set up through a grant; nothing encrypts with the key directly.
    assert sorted(statements["UseVolumeKey"]["Action"]) == [
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKey",
    ]
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
    # The log groups of this stack's endpoints, the one replaced by a new instance type's too.
    assert statements["WriteEndpointLogs"]["Resource"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/"
        "mlserving-dev-digits--*"
    )
    wildcard = [s["Sid"] for s in statements.values() if "*" in _as_list(s["Resource"])]
    assert sorted(wildcard) == ["EcrLogin", "PublishEndpointMetrics"]
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/aws/sagemaker/Endpoints/mlserving-dev-digits--m5-large",
            "RetentionInDays": 30,
        },
    )


def test_gateway_lambda_may_only_invoke_this_endpoint(dev):
    _, template = dev
    statements = _by_sid(_role_policies(template, "Gateway Lambda"))
    assert set(statements) == {"InvokeThisEndpoint", "WriteOwnLogs"}
    assert statements["InvokeThisEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"
    # This stack's endpoints: a new instance type's replaces the old, which the live version
    # calls until the alias moves. Model names cannot contain "--", so no other stack's match.
    assert statements["InvokeThisEndpoint"]["Resource"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlserving-dev-digits--*"
    )
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
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate", (kind, name)
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
        "AwsSolutions-IAM5[Resource::arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/mlserving-dev-digits--*]",
        "AwsSolutions-IAM5[Resource::arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlserving-dev-digits--*]",
        # cdk.json's dev scales to zero: the gateway invokes the stack's inference component.
        "AwsSolutions-IAM5[Resource::arn:aws:sagemaker:us-east-1:123456789012:inference-component/mlserving-dev-digits--*]",
        # ... whose containers log to their own group, which the endpoint's role writes.
        "AwsSolutions-IAM5[Resource::arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/InferenceComponents/mlserving-dev-digits--*]",
        "AwsSolutions-IAM5[Resource::<GatewayLogs.Arn>]",
        # The endpoint's role reads every version of the model (rollbacks).
        "AwsSolutions-IAM5[Resource::arn:aws:s3:::my-models-bucket/digits/*]",
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


def _key_statements(template: Template, key_ref: dict) -> list[dict]:
    (key_id,) = key_ref["Fn::GetAtt"][:1]
    key = template.to_json()["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    return key["Properties"]["KeyPolicy"]["Statement"]


def test_alarm_notifications_can_reach_the_encrypted_topic(dev, prod):
    for _, template in (dev, prod):
        (topic_id, topic), *others = template.find_resources("AWS::SNS::Topic").items()
        assert not others
        # A customer-managed key (CloudWatch cannot use the AWS-managed alias/aws/sns), whose
        # policy lets CloudWatch encrypt the alarm message.
        key_ref = topic["Properties"]["KmsMasterKeyId"]
        assert "alias/aws/sns" not in json.dumps(key_ref)
        statements = _key_statements(template, key_ref)
        (cloudwatch,) = [
            s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert (cloudwatch["Effect"], sorted(cloudwatch["Action"])) == (
            "Allow",
            ["kms:Decrypt", "kms:GenerateDataKey*"],
        )
        # The topic policy lets exactly the alarms that notify the topic publish, and still
        # refuses publishing without TLS.
        (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
        assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
        doc = _by_sid(policy["Properties"]["PolicyDocument"]["Statement"])
        publish = doc["TheseAlarmsPublish"]
        assert publish["Effect"] == "Allow" and publish["Action"] == "sns:Publish"
        assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert publish["Resource"] == {"Ref": topic_id}
        assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        alarms = {
            name
            for name, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
            if {"Ref": topic_id} in alarm["Properties"].get("AlarmActions", [])
        }
        assert len(alarms) == 5
        assert {
            arn["Fn::GetAtt"][0] for arn in publish["Condition"]["ArnEquals"]["aws:SourceArn"]
        } == alarms
        assert doc["AllowPublishThroughSSLOnly"]["Effect"] == "Deny"


def test_alarm_email_subscribes_only_when_set(dev, prod):
    _, dev_template = dev
    assert dev_template.find_resources("AWS::SNS::Subscription") == {}
    _, prod_template = prod
    (topic_id,) = prod_template.find_resources("AWS::SNS::Topic")
    prod_template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": {"Ref": topic_id}},
    )


def test_every_log_group_is_encrypted_with_the_stacks_key(dev, prod, iam_auth):
    for _, template in (dev, prod, iam_auth):
        groups = template.find_resources("AWS::Logs::LogGroup")
        assert len(groups) >= 4
        keys = {json.dumps(g["Properties"].get("KmsKeyId")) for g in groups.values()}
        (key_ref,) = keys
        statements = _key_statements(template, json.loads(key_ref))
        # CloudWatch Logs may use the key for this account's log groups in this region only.
        (logs_statement,) = [
            s for s in statements if s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
        ]
        assert logs_statement["Condition"] == {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"
                )
            }
        }
        assert sorted(logs_statement["Action"]) == [
            "kms:Decrypt*",
            "kms:Describe*",
            "kms:Encrypt*",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
        ]


def test_gateway_lambda_reserves_concurrency_sized_from_the_throttle(dev, prod):
    for (_, template), burst in ((dev, 100), (prod, 400)):
        (function,) = template.find_resources(
            "AWS::Lambda::Function",
            {"Properties": {"Handler": "prediction_gateway.handler.lambda_handler"}},
        ).values()
        reserved = function["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == burst
        (alias,) = template.find_resources("AWS::Lambda::Alias").values()
        provisioned = (
            alias["Properties"]
            .get("ProvisionedConcurrencyConfig", {})
            .get("ProvisionedConcurrentExecutions", 0)
        )
        assert reserved >= 2 * provisioned


def test_autoscaling_uses_its_service_linked_role_not_a_role_of_ours(dev):
    _, template = dev
    (target,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert "RoleARN" not in target["Properties"]
    for role in template.find_resources("AWS::IAM::Role").values():
        principals = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        assert "application-autoscaling" not in principals


def test_execution_role_may_read_exactly_the_rollback_alarms(dev):
    _, template = dev
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    alarms = [
        a["AlarmName"]["Ref"]
        for a in endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    (role_id,) = template.find_resources(
        "AWS::IAM::Role",
        {"Properties": {"Description": Match.string_like_regexp("^SageMaker execution role")}},
    )
    (policy,) = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    ).values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ReadRollbackAlarms",
            "Effect": "Allow",
            "Action": "cloudwatch:DescribeAlarms",
            "Resource": {"Fn::GetAtt": [alarms[0], "Arn"]},
        }
    ]


def test_a_local_artifacts_versions_are_readable_under_the_stacks_asset_folder(prod):
    # Each deploy uploads the artifact as a new asset object; the role reads the stack's asset
    # folder of the bootstrap bucket, so the previous version stays readable, and other apps'
    # assets do not.
    _, template = prod
    statements = _by_sid(_role_policies(template, "SageMaker execution role"))
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    url = model["Properties"]["PrimaryContainer"]["ModelDataUrl"]
    bucket = "cdk-hnb659fds-assets-123456789012-us-east-1"
    assert url.startswith(f"s3://{bucket}/MlServing-prod-sentiment/")
    assert json.dumps(statements["ReadModelVersions"]["Resource"]) == json.dumps(
        f"arn:aws:s3:::{bucket}/MlServing-prod-sentiment/*"
    )

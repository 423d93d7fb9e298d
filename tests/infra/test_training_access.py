"""The SageMaker training role: exactly what a training job may do, statement by statement.

A tiny stack of its own (a bucket + the construct), synthesized with the AwsSolutions checks
attached, so `Template.from_stack` also fails on an unacknowledged cdk-nag finding.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Capture, Match, Template
from cdk_nag import AwsSolutionsChecks

from contracts import bucket as bucket_layout
from stacks.training_access import TrainingAccess, dlc_repository_arns

ACCOUNT = "123456789012"
REGION = "eu-west-1"
REPOS = [
    f"arn:aws:ecr:{REGION}:763104351884:repository/pytorch-training",
    f"arn:aws:ecr:{REGION}:763104351884:repository/tensorflow-training",
]


def synth(*, kms_key: bool = False, **overrides: Any) -> Template:
    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(
        app, "TrainingAccessTest", env=cdk.Environment(account=ACCOUNT, region=REGION)
    )
    key = kms.Key(stack, "Key", enable_key_rotation=True) if kms_key else None
    bucket = s3.Bucket(
        stack,
        "Bucket",
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
    )
    cdk.Validations.of(bucket).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-S1", reason="test bucket, no access logs needed")
    )
    props = {
        "bucket": bucket,
        # the bucket layout the launcher writes to (contracts.bucket), as the serving stack passes it
        "data_prefix": bucket_layout.DATA_PREFIX,
        "output_prefix": bucket_layout.OUTPUT_PREFIX,
        "checkpoint_prefix": bucket_layout.CHECKPOINT_PREFIX,
        "training_image_repositories": REPOS,
        **overrides,
    }
    TrainingAccess(stack, "TrainingAccess", **props)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return synth()


def render(value: Any) -> Any:
    """Resolve Fn::Join / partition / bucket ARN refs into readable strings for comparisons."""
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(render(p)) for p in parts)
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(
            value["Ref"], f"<{value['Ref']}>"
        )
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    return value


def statements(template: Template) -> dict[str, dict[str, Any]]:
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 1
    (role,) = roles.values()
    (policy,) = role["Properties"]["Policies"]
    return {s["Sid"]: render(s) for s in policy["PolicyDocument"]["Statement"]}


def bucket_arn(template: Template) -> str:
    (logical_id,) = template.find_resources("AWS::S3::Bucket")
    return f"<{logical_id}.Arn>"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_only_sagemaker_in_this_account_can_assume_the_role(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                    }
                ]
            },
            "ManagedPolicyArns": Match.absent(),  # no *FullAccess or any managed policy
        },
    )


def test_s3_access_is_limited_to_the_three_training_prefixes(template: Template) -> None:
    found = statements(template)
    arn = bucket_arn(template)
    assert found["ReadInputs"] == {
        "Sid": "ReadInputs",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"{arn}/training/input/*",
    }
    assert found["ReadWriteOutputsAndCheckpoints"] == {
        "Sid": "ReadWriteOutputsAndCheckpoints",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        "Resource": [f"{arn}/training/jobs/*", f"{arn}/training/checkpoints/*"],
    }
    assert found["ListTrainingPrefixes"] == {
        "Sid": "ListTrainingPrefixes",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": arn,
        "Condition": {
            "StringLike": {
                "s3:prefix": ["training/input/*", "training/jobs/*", "training/checkpoints/*"]
            }
        },
    }
    # nothing else touches S3: no s3:*, no DeleteObject, no other bucket
    s3_actions = {
        action
        for statement in found.values()
        for action in as_list(statement["Action"])
        if action.startswith("s3:")
    }
    assert s3_actions == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
    }


def test_images_logs_and_metrics_are_scoped(template: Template) -> None:
    found = statements(template)
    assert found["PullTrainingImages"]["Resource"] == REPOS
    assert found["PullTrainingImages"]["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert found["EcrLogin"] == {
        "Sid": "EcrLogin",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
    assert found["WriteTrainingLogs"]["Resource"] == [log_group, f"{log_group}:*"]
    assert found["PublishTrainingMetrics"] == {
        "Sid": "PublishTrainingMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
    }
    # Only these two statements may use Resource "*", and neither grants more than its one action
    wildcard = {sid for sid, s in found.items() if "*" in as_list(s["Resource"])}
    assert wildcard == {"EcrLogin", "PublishTrainingMetrics"}
    assert "UseBucketKey" not in found  # S3-managed encryption needs no KMS grant


def test_customer_managed_bucket_key_is_granted_decrypt_and_generate_only() -> None:
    template = synth(kms_key=True)
    key = Capture()
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Policies": [
                {
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                {
                                    "Sid": "UseBucketKey",
                                    "Effect": "Allow",
                                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                    "Resource": {"Fn::GetAtt": [key, "Arn"]},
                                }
                            ]
                        )
                    },
                    "PolicyName": "Training",
                }
            ]
        },
    )
    assert key.as_string() in template.find_resources("AWS::KMS::Key")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_prefix": "/training/input/"}, "data_prefix must be a key prefix"),
        ({"output_prefix": "training/jobs"}, "output_prefix must be a key prefix"),
        ({"checkpoint_prefix": "training/input/ckpt/"}, "lies inside data_prefix"),
        ({"training_image_repositories": []}, "at least one ECR repository ARN"),
        ({"training_image_repositories": ["pytorch-training"]}, "is not an ECR repository ARN"),
        ({"log_group_name_prefix": "aws/sagemaker"}, "log_group_name_prefix must be"),
    ],
)
def test_bad_props_are_rejected_with_the_prop_name(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synth(**overrides)


def test_dlc_repository_arns_resolve_the_dlc_account_offline() -> None:
    assert dlc_repository_arns("eu-west-1") == REPOS
    # regions whose DLCs live in another account get that account, not the default one
    (hong_kong,) = dlc_repository_arns("ap-east-1", ("pytorch-training",))
    assert hong_kong.startswith("arn:aws:ecr:ap-east-1:") and ":763104351884:" not in hong_kong

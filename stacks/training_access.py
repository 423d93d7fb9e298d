"""The SageMaker training execution role, scoped to the project bucket's training prefixes.

What a training job (the launcher's ``train``/``tune``, training/launch/) needs and nothing else:

- read ``data_prefix``: the data sets and the launcher's content-addressed code bundles;
- read and write ``output_prefix``: ``<job>/output/model.tar.gz`` is written there, and the SDK
  stages each job's driver folder there too (``<base job>/<job>/input/sm_drivers``), which the job
  reads back;
- read and write ``checkpoint_prefix``: SageMaker restores checkpoints from it onto a replacement
  spot instance and uploads new ones;
- list the bucket only under those prefixes (``s3:prefix`` condition);
- pull the training images from the given ECR repositories only (``ecr:GetAuthorizationToken``
  has no resource-level permissions, so it is on ``*``);
- write its own log group and streams; publish CloudWatch metrics only to SageMaker's training
  namespace (``cloudwatch:PutMetricData`` has no resource-level permissions: a namespace
  condition limits it instead);
- use the bucket's customer-managed KMS key when it has one.

No VPC permissions (the jobs do not run in a VPC) and no managed ``*FullAccess`` policies.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

SAGEMAKER_TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
_ECR_REPOSITORY_ARN = re.compile(
    r"^arn:aws[a-z\-]*:ecr:[a-z0-9\-]+:\d{12}:repository/[a-z0-9._/\-]+$"
)
# AWS Deep Learning Containers live in this account in most regions (sagemaker-core's
# image_uri_config lists the exceptions, e.g. opt-in and China regions).
DLC_ACCOUNT = "763104351884"


def dlc_repository_arns(
    region: str, repositories: tuple[str, ...] = ("pytorch-training", "tensorflow-training")
) -> list[str]:
    """ARNs of the AWS Deep Learning Container training repositories in ``region``.

    The account comes from sagemaker-core's offline image tables, so regions whose DLCs live in
    another account get the right one.
    """
    if cdk.Token.is_unresolved(region):
        raise ValueError("dlc_repository_arns: region must be a concrete region name, not a token")
    from sagemaker.core.image_uris import config_for_framework

    arns = []
    for repository in repositories:
        framework = repository.removesuffix("-training")
        versions = config_for_framework(framework)["training"]["versions"]
        registries = versions[max(versions, key=_version_key)]["registries"]
        account = registries.get(region, DLC_ACCOUNT)
        arns.append(f"arn:aws:ecr:{region}:{account}:repository/{repository}")
    return arns


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _check_prefix(name: str, prefix: str) -> str:
    if not prefix or prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix:
        raise ValueError(
            f"TrainingAccess: {name} must be a key prefix like 'training/input/' (no leading "
            f"'/', a trailing '/', no '*'); got {prefix!r}"
        )
    return prefix


class TrainingAccess(Construct):
    """``self.role``: the least-privilege role SageMaker training jobs run as."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        data_prefix: str,
        output_prefix: str,
        checkpoint_prefix: str,
        training_image_repositories: list[str],
        log_group_name_prefix: str = SAGEMAKER_TRAINING_NAMESPACE,
    ) -> None:
        super().__init__(scope, construct_id)
        prefixes = {
            "data_prefix": _check_prefix("data_prefix", data_prefix),
            "output_prefix": _check_prefix("output_prefix", output_prefix),
            "checkpoint_prefix": _check_prefix("checkpoint_prefix", checkpoint_prefix),
        }
        for name, prefix in prefixes.items():
            for other_name, other in prefixes.items():
                if name != other_name and other.startswith(prefix):
                    # e.g. output inside data would make part of the read-only input writable
                    raise ValueError(
                        f"TrainingAccess: {other_name} {other!r} lies inside {name} {prefix!r}; "
                        "the three prefixes must not overlap"
                    )
        if not training_image_repositories:
            raise ValueError(
                "TrainingAccess: training_image_repositories must name at least one ECR "
                "repository ARN (see dlc_repository_arns)"
            )
        for arn in training_image_repositories:
            if not cdk.Token.is_unresolved(arn) and not _ECR_REPOSITORY_ARN.match(arn):
                raise ValueError(
                    f"TrainingAccess: {arn!r} in training_image_repositories is not an ECR "
                    "repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>)"
                )
        if not log_group_name_prefix.startswith("/") or "*" in log_group_name_prefix:
            raise ValueError(
                f"TrainingAccess: log_group_name_prefix must be a log group name like "
                f"/aws/sagemaker/TrainingJobs; got {log_group_name_prefix!r}"
            )

        stack = cdk.Stack.of(self)
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name_prefix,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        writable = [bucket.arn_for_objects(f"{p}*") for p in (output_prefix, checkpoint_prefix)]
        statements = [
            iam.PolicyStatement(
                sid="ReadInputs",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{data_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ReadWriteOutputsAndCheckpoints",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=writable,
            ),
            iam.PolicyStatement(
                sid="ListTrainingPrefixes",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{p}*" for p in prefixes.values()]},
                },
            ),
            iam.PolicyStatement(
                sid="PullTrainingImages",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=list(training_image_repositories),
            ),
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],  # GetAuthorizationToken supports no resource-level permissions
            ),
            iam.PolicyStatement(
                sid="WriteTrainingLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=[log_group_arn, f"{log_group_arn}:*"],
            ),
            iam.PolicyStatement(
                sid="PublishTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData supports no resource-level permissions
                conditions={"StringEquals": {"cloudwatch:namespace": SAGEMAKER_TRAINING_NAMESPACE}},
            ),
        ]
        if bucket.encryption_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="UseBucketKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[bucket.encryption_key.key_arn],
                )
            )
        self.role = iam.Role(
            self,
            "Role",
            # Only SageMaker in this account may assume it (confused-deputy protection).
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="SageMaker training jobs: read inputs, write outputs and checkpoints",
            inline_policies={"Training": iam.PolicyDocument(statements=statements)},
        )
        self._acknowledge_wildcards(bucket, prefixes, log_group_name_prefix)

    def _acknowledge_wildcards(
        self, bucket: s3.IBucket, prefixes: dict[str, str], log_group: str
    ) -> None:
        child = bucket.node.default_child
        if isinstance(child, cdk.CfnResource):
            bucket_ref = f"<{cdk.Stack.of(bucket).get_logical_id(child)}.Arn>"
        else:
            bucket_ref = f"arn:<AWS::Partition>:s3:::{bucket.bucket_name}"
        stack = cdk.Stack.of(self)
        region = "<AWS::Region>" if cdk.Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if cdk.Token.is_unresolved(stack.account) else stack.account
        # A literal with @aws-cdk/core:enablePartitionLiterals and a concrete region.
        partition = (
            "<AWS::Partition>" if cdk.Token.is_unresolved(stack.partition) else stack.partition
        )
        findings = {
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken and "
            "cloudwatch:PutMetricData support no resource-level permissions; PutMetricData is "
            "limited to SageMaker's training namespace by a condition.",
            f"AwsSolutions-IAM5[Resource::arn:{partition}:logs:{region}:{account}:"
            f"log-group:{log_group}:*]": "The log streams of SageMaker's training log group; "
            "stream names are made per job at run time.",
        }
        for name, prefix in prefixes.items():
            findings[f"AwsSolutions-IAM5[Resource::{bucket_ref}/{prefix}*]"] = (
                f"Objects under the training {name.removesuffix('_prefix')} prefix only; keys "
                "are made per data set and per job at run time."
            )
        for rule_id, reason in findings.items():
            cdk.Validations.of(self.role).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))

"""The project's S3 bucket for model artifacts, training data, outputs and checkpoints."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.common import data_removal_policy


class Storage(Construct):
    """An encrypted, private, versioned bucket that only accepts TLS, with server access logs.

    ``retain_data`` decides what `cdk destroy` does: False (dev) deletes both buckets and their
    objects; True (prod) keeps them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain_data: bool,
        noncurrent_version_expiration_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Log delivery is granted by bucket policy (ACLs stay disabled) whatever the app's flags.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        if noncurrent_version_expiration_days < 1:
            raise ValueError("Storage: noncurrent_version_expiration_days must be at least 1")
        removal = data_removal_policy(retain_data)
        auto_delete = not retain_data

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write to SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        cdk.Validations.of(self.access_logs_bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the access-log bucket itself; logging it to itself would loop.",
            )
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=cdk.Duration.days(
                        noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

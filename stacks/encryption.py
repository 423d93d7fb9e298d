"""The stack's own KMS key: its log groups and its alarm topic are encrypted with it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class StackKey(Construct):
    """A customer-managed key (rotated yearly) whose policy lets CloudWatch Logs and alarms use it.

    AWS-managed keys cannot be shared with services their policy does not name: CloudWatch
    cannot publish to a topic encrypted with `alias/aws/sns` (aws/aws-cdk#11121), and CloudWatch
    Logs cannot use one at all. Each service gets exactly the actions its guide lists, the logs
    service only for this account's log groups in this region.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=cdk.Duration.days(7),
        )
        stack = cdk.Stack.of(self)
        # CloudWatch Logs guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the regional
        # logs principal, limited by the encryption context to log groups of this account.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Decrypt*",
                    "kms:Describe*",
                    "kms:Encrypt*",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # SNS developer guide, "Configure KMS permissions for AWS services": CloudWatch calls
        # KMS itself when an alarm publishes to an encrypted topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

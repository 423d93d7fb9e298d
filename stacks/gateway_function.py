"""The Lambda function between API Gateway and the endpoint, published behind an alias."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.common import data_removal_policy, logical_id, nag_resource, retention

ALIAS_NAME = "live"
HANDLER = "prediction_gateway.handler.lambda_handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# AWS's public Powertools for AWS Lambda (Python) v3 layer account; the layer name encodes the
# runtime and architecture.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"


class GatewayFunction(Construct):
    """The model-agnostic gateway Lambda (code from `lambda_src/`) and its `live` alias.

    Its role may invoke exactly ``invoke_arn`` (this stack's endpoints: while a new instance
    type's endpoint replaces the old one, the live version still calls the old) and write its own
    logs and traces; the API integrates with the alias (never `$LATEST`), which carries the
    provisioned concurrency. ``reserved_concurrency`` (at least the provisioned concurrency)
    reserves and caps its share of the account's Lambda concurrency.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        endpoint_name: str,
        invoke_arns: list[str],
        endpoint_content_type: str,
        cors_allow_origin: str,
        memory_mb: int,
        timeout_s: int,
        provisioned_concurrency: int,
        powertools_layer_version: int,
        log_level: str,
        log_retention_days: int,
        log_key: kms.IKey,
        reserved_concurrency: int | None,
        retain_data: bool,
        metrics_namespace: str,
        service_name: str,
        inference_component_name: str | None = None,
        cold_start_retry_after_s: int = 60,
    ) -> None:
        super().__init__(scope, construct_id)
        entry = code_dir / Path(*HANDLER.split(".")[:-1]).with_suffix(".py")
        if not entry.is_file():
            raise ValueError(f"GatewayFunction: {entry} not found (the handler {HANDLER})")
        if provisioned_concurrency < 0:
            raise ValueError("GatewayFunction: provisioned_concurrency must be >= 0")
        if reserved_concurrency is not None and reserved_concurrency < provisioned_concurrency:
            raise ValueError(
                f"GatewayFunction: reserved_concurrency ({reserved_concurrency}) must be at "
                f"least provisioned_concurrency ({provisioned_concurrency})"
            )
        removal = data_removal_policy(retain_data)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(log_retention_days),
            encryption_key=log_key,
            removal_policy=removal,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Gateway Lambda: invokes SageMaker endpoint {endpoint_name} only",
            inline_policies={
                "Gateway": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="InvokeThisEndpoint",
                            actions=["sagemaker:InvokeEndpoint"],
                            resources=invoke_arns,
                        ),
                        iam.PolicyStatement(
                            sid="WriteOwnLogs",
                            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[self.log_group.log_group_arn],
                        ),
                    ]
                )
            },
        )
        # The read timeout leaves the handler time to answer before its own timeout.
        read_timeout_s = max(1, timeout_s - 4)
        layer_name = f"AWSLambdaPowertoolsPythonV3-{RUNTIME.name.replace('.', '')}-x86_64"
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(code_dir),
                exclude=["README.md", "requirements.txt", "__pycache__", "*.pyc", "openapi.json"],
            ),
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_s),
            reserved_concurrent_executions=reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self,
                    "Powertools",
                    cdk.Fn.sub(
                        f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:{POWERTOOLS_LAYER_ACCOUNT}"
                        f":layer:{layer_name}:{powertools_layer_version}"
                    ),
                )
            ],
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "ENDPOINT_CONTENT_TYPE": endpoint_content_type,
                "CORS_ALLOW_ORIGIN": cors_allow_origin,
                "MAX_PAYLOAD_BYTES": str(6 * 1024 * 1024),  # InvokeEndpoint's limit, 6 MiB
                "INVOKE_CONNECT_TIMEOUT_S": "2",
                "INVOKE_READ_TIMEOUT_S": str(read_timeout_s),
                "INVOKE_MAX_ATTEMPTS": "2",
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
                "LOG_LEVEL": log_level,
                **(
                    {
                        "INFERENCE_COMPONENT_NAME": inference_component_name,
                        "NO_CAPACITY_RETRY_AFTER_S": str(cold_start_retry_after_s),
                    }
                    if inference_component_name
                    else {}
                ),
            },
            description=f"Turns HTTP requests into invocations of SageMaker endpoint {endpoint_name}",
        )
        for invoke_arn in invoke_arns:
            if "*" not in invoke_arn:
                continue
            cdk.Validations.of(self.role).acknowledge(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, invoke_arn)}]",
                    reason="This stack's endpoints (and their inference components) only: their "
                    "names start with the stack's; while a new endpoint replaces the old, the "
                    "live version still calls the old.",
                )
            )
        # Tracing ACTIVE adds the X-Ray statements to the role's default policy.
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level "
                "permissions.",
            )
        )
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id(self.log_group)}.Arn>]",
                reason="The log group ARN ends in :* by design, to cover its log streams.",
            )
        )

        # The function already references the role (GetAtt); CDK's extra DependsOn on the role
        # only trips cfn-lint W3005. Keep the one on the X-Ray default policy.
        function_resource = self.function.node.default_child
        assert isinstance(function_resource, cdk.CfnResource)
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            function_resource.add_override("DependsOn", [logical_id(default_policy)])
        cdk.Validations.of(self.function).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to python3.13 to match the runtime of the public Powertools layer "
                "version pinned in config; moved forward together with powertools_layer_version.",
            )
        )

        self.alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=ALIAS_NAME,
            version=self.function.current_version,
            provisioned_concurrent_executions=provisioned_concurrency or None,
        )

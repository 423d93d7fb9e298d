"""The SageMaker model, endpoint config and endpoint, with a least-privilege execution role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.artifact import ServingImage
from stacks.common import logical_id, retention

VARIANT_NAME = "AllTraffic"


GPU_INFERENCE_AMI = "al2-ami-sagemaker-inference-gpu-3-1"


def is_gpu(instance_type: str) -> bool:
    """Whether a SageMaker instance type has NVIDIA GPUs (sagemaker-core picks CUDA images)."""
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return family.startswith(("g", "p"))


class ModelEndpoint(Construct):
    """A real-time endpoint with one production variant serving ``model_data_url`` in ``image``.

    The execution role may read exactly the artifact object, pull exactly the serving image's
    repository, write exactly the endpoint's log group, and use the volume key; nothing else.
    Its permissions are inline on the role so they exist before CreateModel checks them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_data_url: str,
        model_object_arn: str,
        image: ServingImage,
        container_env: Mapping[str, str],
        instance_type: str,
        initial_instance_count: int,
        volume_kms: bool,
        container_startup_timeout_s: int,
        log_retention_days: int,
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= len(endpoint_name) <= 63:
            raise ValueError(
                f"ModelEndpoint: endpoint_name {endpoint_name!r} must be 1-63 characters"
            )
        if initial_instance_count < 1:
            raise ValueError("ModelEndpoint: initial_instance_count must be at least 1")
        removal = cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY
        self.endpoint_name = endpoint_name
        self.variant_name = VARIANT_NAME

        # SageMaker writes the containers' stdout/stderr here; creating it ourselves sets the
        # retention and lets `cdk destroy` remove it in dev.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention=retention(log_retention_days),
            removal_policy=removal,
        )

        self.volume_key: kms.Key | None = None
        if volume_kms:
            self.volume_key = kms.Key(
                self,
                "VolumeKey",
                description=f"Encrypts the storage volumes of SageMaker endpoint {endpoint_name}",
                enable_key_rotation=True,
                removal_policy=removal,
                pending_window=cdk.Duration.days(7),
            )

        statements = [
            iam.PolicyStatement(
                sid="ReadModelArtifact", actions=["s3:GetObject"], resources=[model_object_arn]
            ),
            iam.PolicyStatement(
                sid="PullServingImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[image.repository_arn],
            ),
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="WriteEndpointLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="PublishEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            ),
        ]
        if self.volume_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="UseVolumeKey",
                    actions=[
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                        "kms:ReEncryptFrom",
                        "kms:ReEncryptTo",
                    ],
                    resources=[self.volume_key.key_arn],
                )
            )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role of endpoint {endpoint_name}",
            inline_policies={"Serving": iam.PolicyDocument(statements=statements)},
        )
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken has no resource-level permissions, and "
                "cloudwatch:PutMetricData is limited by a namespace condition instead.",
            )
        )
        cdk.Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id(self.log_group)}.Arn>]",
                reason="The log group ARN ends in :* by design, to cover its log streams.",
            )
        )

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image.uri,
                model_data_url=model_data_url,
                environment=dict(container_env) or None,
            ),
            enable_network_isolation=True,
        )

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=initial_instance_count,
                    initial_variant_weight=1.0,
                    container_startup_health_check_timeout_in_seconds=container_startup_timeout_s,
                    # AWS's CUDA serving images need a host AMI with newer NVIDIA drivers than the
                    # default one (aws/deep-learning-containers docs/ray/deployment/sagemaker.md).
                    inference_ami_version=GPU_INFERENCE_AMI if is_gpu(instance_type) else None,
                )
            ],
            kms_key_id=self.volume_key.key_arn if self.volume_key else None,
        )

        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint.node.add_dependency(self.log_group)
        # Ref of AWS::SageMaker::Endpoint is its ARN (SageMaker lower-cases the name in ARNs).
        self.endpoint_arn = self.endpoint.ref

    def enable_auto_rollback(self, alarm_names: Sequence[str]) -> None:
        """Roll new endpoint configs out blue/green, rolling back if any of ``alarm_names`` fires."""
        if not alarm_names:
            raise ValueError("ModelEndpoint.enable_auto_rollback: give at least one alarm name")
        self.endpoint.deployment_config = sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="ALL_AT_ONCE", wait_interval_in_seconds=0
                ),
                termination_wait_in_seconds=300,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=n) for n in alarm_names]
            ),
        )

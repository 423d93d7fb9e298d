"""The SageMaker model, endpoint config and endpoint, with a least-privilege execution role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.artifact import ServingImage
from stacks.capacity import ROLLING_BATCH_PERCENT, update_headroom
from stacks.common import data_removal_policy, nag_resource, retention
from stacks.instance_types import copy_resources, is_gpu

VARIANT_NAME = "AllTraffic"


GPU_INFERENCE_AMI = "al2-ami-sagemaker-inference-gpu-3-1"


class ModelEndpoint(Construct):
    """A real-time endpoint with one production variant serving ``model_data_url`` in ``image``.

    The execution role may read exactly the model's artifacts (``model_read_arn``: the folder of
    its versions), pull exactly the serving image's repository, write exactly the log groups of
    the stack's endpoints (``endpoint_family``: the prefix of their names), use the volume key,
    and read the rollback alarms; nothing else. Its permissions are inline on the role so they
    exist before CreateModel checks them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        endpoint_family: str,
        model_data_url: str,
        model_read_arn: str,
        image: ServingImage,
        container_env: Mapping[str, str],
        instance_type: str,
        initial_instance_count: int,
        volume_kms: bool,
        container_startup_timeout_s: int,
        log_retention_days: int,
        log_key: kms.IKey,
        retain_data: bool,
        scale_to_zero: bool = False,
        max_instances: int = 1,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= len(endpoint_name) <= 63:
            raise ValueError(
                f"ModelEndpoint: endpoint_name {endpoint_name!r} must be 1-63 characters"
            )
        if not endpoint_name.startswith(endpoint_family):
            raise ValueError(
                f"ModelEndpoint: endpoint_name {endpoint_name!r} must start with endpoint_family "
                f"{endpoint_family!r}"
            )
        if initial_instance_count < 1:
            raise ValueError("ModelEndpoint: initial_instance_count must be at least 1")
        removal = data_removal_policy(retain_data)
        self.endpoint_name = endpoint_name
        self.variant_name = VARIANT_NAME
        # Named after the endpoint (which names the instance type): a new instance type creates
        # a new endpoint and component side by side, before the old ones are deleted.
        self.inference_component_name: str | None = f"{endpoint_name}-ic" if scale_to_zero else None
        if self.inference_component_name and len(self.inference_component_name) > 63:
            raise ValueError(
                f"ModelEndpoint: inference component name {self.inference_component_name!r} "
                "must be at most 63 characters: shorten the model name"
            )

        # SageMaker writes the containers' stdout/stderr here; creating it ourselves sets the
        # retention and lets `cdk destroy` remove it in dev.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention=retention(log_retention_days),
            encryption_key=log_key,
            removal_policy=removal,
        )
        # An inference component's containers log to a group of their own, named after the
        # component ("/aws/sagemaker/InferenceComponents/<name>"), not the endpoint's.
        self.component_log_group: logs.LogGroup | None = None
        if self.inference_component_name:
            self.component_log_group = logs.LogGroup(
                self,
                "ComponentLogs",
                log_group_name=f"/aws/sagemaker/InferenceComponents/{self.inference_component_name}",
                retention=retention(log_retention_days),
                encryption_key=log_key,
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

        log_groups = ["Endpoints"] + (["InferenceComponents"] if scale_to_zero else [])
        logs_arns = [
            cdk.Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/{group}/{endpoint_family}*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for group in log_groups
        ]
        namespaces = [f"/aws/sagemaker/{group}" for group in log_groups]
        metric_namespaces: str | list[str] = namespaces[0] if len(namespaces) == 1 else namespaces
        statements = [
            iam.PolicyStatement(
                sid="ReadModelVersions", actions=["s3:GetObject"], resources=[model_read_arn]
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
            # logs:CreateLogGroup stays although the group is declared: it is in SageMaker's list
            # of execution-role permissions ("CreateModel API: Execution Role Permissions"), and
            # no AWS source says an endpoint tolerates its denial when the group exists (some
            # services do not: aws/ec2-image-builder-roadmap#109). It reaches only the groups of
            # this stack's endpoints: while a new instance type's endpoint replaces the old one,
            # both are running and logging.
            iam.PolicyStatement(
                sid="WriteEndpointLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                resources=logs_arns,
            ),
            iam.PolicyStatement(
                sid="PublishEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": metric_namespaces}},
            ),
        ]
        if self.volume_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="UseVolumeKey",
                    # Nothing in the container encrypts with the key itself: the volume is set up
                    # through a grant. No kms:Encrypt or kms:ReEncrypt*.
                    actions=[
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:GenerateDataKey",
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
        if model_read_arn.endswith("*"):
            cdk.Validations.of(self.role).acknowledge(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, model_read_arn)}]",
                    reason="Every version of this model: a rollback starts the previous "
                    "artifact, which the role must still read. Read-only, one folder.",
                )
            )
        for logs_arn in logs_arns:
            cdk.Validations.of(self.role).acknowledge(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, logs_arn)}]",
                    reason="The log groups of this stack's endpoints and inference components "
                    "(their names start with the stack's) and their log streams.",
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

        self.inference_component: sagemaker.CfnInferenceComponent | None = None
        if scale_to_zero:
            self._inference_component_endpoint(
                instance_type, initial_instance_count, max_instances, container_startup_timeout_s
            )
        else:
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

        self.container_startup_timeout_s = container_startup_timeout_s
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # An update (a new model or config) starts the green fleet with the variant's current
            # instance count, as autoscaling set it, instead of the config's initial count, so
            # capacity does not drop under load ("Update endpoints that use auto scaling",
            # SageMaker developer guide).
            retain_all_variant_properties=True,
        )
        self.endpoint.node.add_dependency(self.log_group)
        # Ref of AWS::SageMaker::Endpoint is its ARN (SageMaker lower-cases the name in ARNs).
        self.endpoint_arn = self.endpoint.ref
        if scale_to_zero:
            cores, memory_mb = copy_resources(instance_type)
            assert self.inference_component_name is not None
            self.inference_component = sagemaker.CfnInferenceComponent(
                self,
                "InferenceComponent",
                inference_component_name=self.inference_component_name,
                endpoint_name=self.endpoint.attr_endpoint_name,
                variant_name=VARIANT_NAME,
                specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                    model_name=self.model.attr_model_name,
                    compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                        number_of_cpu_cores_required=cores,
                        min_memory_required_in_mb=memory_mb,
                    ),
                    startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                        container_startup_health_check_timeout_in_seconds=container_startup_timeout_s,
                    ),
                ),
                # A fresh deploy starts warm; autoscaling takes it to 0 when idle.
                runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                    copy_count=1
                ),
            )
            assert self.component_log_group is not None
            self.inference_component.node.add_dependency(self.component_log_group)

    def _inference_component_endpoint(
        self,
        instance_type: str,
        initial_instance_count: int,
        max_instances: int,
        container_startup_timeout_s: int,
    ) -> None:
        """An endpoint config for inference components: no model on the variant, instances
        managed by SageMaker from 0 to ``max_instances`` ("Scale an endpoint to zero instances",
        SageMaker developer guide)."""
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            # Required on a config whose variant hosts inference components.
            execution_role_arn=self.role.role_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=instance_type,
                    initial_instance_count=initial_instance_count,
                    managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                        status="ENABLED",
                        min_instance_count=0,
                        # Copies stop at max_instances (the scalable target); a rolling model
                        # update starts its batch beside them.
                        max_instance_count=max_instances + update_headroom(max_instances),
                    ),
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                    ),
                    inference_ami_version=GPU_INFERENCE_AMI if is_gpu(instance_type) else None,
                )
            ],
            kms_key_id=self.volume_key.key_arn if self.volume_key else None,
        )

    def enable_auto_rollback(self, alarms: Sequence[cloudwatch.IAlarm], *, bake_s: int) -> None:
        """Roll new endpoint configs out blue/green, rolling back if any of ``alarms`` fires.

        ``bake_s``: how long the old (blue) fleet stays up after all traffic moved to the new
        one; the alarms must be able to fire within it, or a broken model is kept.
        """
        if not alarms:
            raise ValueError("ModelEndpoint.enable_auto_rollback: give at least one alarm")
        if not 0 < bake_s <= 3600:
            raise ValueError("ModelEndpoint.enable_auto_rollback: bake_s must be 1-3600 seconds")
        # The deployment may take: new instances (minutes), the container's start-up (up to its
        # health-check timeout), then the baking period. SageMaker's limit is 600-28800 s.
        max_execution_s = min(28_800, max(600, bake_s + self.container_startup_timeout_s + 1800))
        if self.inference_component is not None:
            # A new model changes only the component (the endpoint config names no model), and
            # SageMaker updates a component by rolling its copies, with the component's own
            # DeploymentConfig; the endpoint's blue/green policy never runs for it
            # (AWS::SageMaker::InferenceComponent DeploymentConfig, "Update inference
            # components", SageMaker developer guide). Half the copies at a time; the wait after each
            # batch is the baking period the alarms watch.
            ic = sagemaker.CfnInferenceComponent
            self.inference_component.deployment_config = (
                ic.InferenceComponentDeploymentConfigProperty(
                    rolling_update_policy=ic.InferenceComponentRollingUpdatePolicyProperty(
                        # AWS accepts a batch of 5-50% of the copy count; a fixed count of
                        # 1 would be 100% of a one-copy component and be refused.
                        maximum_batch_size=ic.InferenceComponentCapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=ROLLING_BATCH_PERCENT
                        ),
                        wait_interval_in_seconds=bake_s,
                        maximum_execution_timeout_in_seconds=max_execution_s,
                    ),
                    auto_rollback_configuration=ic.AutoRollbackConfigurationProperty(
                        alarms=[ic.AlarmProperty(alarm_name=a.alarm_name) for a in alarms]
                    ),
                )
            )
            self._allow_describe_alarms(alarms)
            return
        self.endpoint.deployment_config = sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="ALL_AT_ONCE", wait_interval_in_seconds=0
                ),
                # With all-at-once shifting the baking period is this wait: the alarms are
                # watched, and trip a rollback to the blue fleet, until it ends.
                termination_wait_in_seconds=bake_s,
                maximum_execution_timeout_in_seconds=max_execution_s,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in alarms
                ]
            ),
        )
        self._allow_describe_alarms(alarms)

    def _allow_describe_alarms(self, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        # "Ensure that your IAM execution role has permission to perform the
        # cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify" (SageMaker
        # developer guide, "Auto-Rollback Configuration and Monitoring").
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[a.alarm_arn for a in alarms],
            )
        )

"""The one stack that composes the serving constructs and makes the cross-construct grants."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from contracts import bucket as training_layout
from stacks.artifact import ModelSource
from stacks.client_access import ClientAccess
from stacks.common import data_removal_policy, retention
from stacks.config import ServingConfig, volume_kms_supported
from stacks.encryption import StackKey
from stacks.endpoint_autoscaling import EndpointAutoscaling
from stacks.gateway_function import GatewayFunction
from stacks.model_endpoint import ModelEndpoint
from stacks.monitoring import ROLLBACK_BAKE_S, Monitoring
from stacks.prediction_api import PredictionApi
from stacks.storage import Storage
from stacks.training_access import TrainingAccess, dlc_repository_arns

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ServingStack(cdk.Stack):
    """Bucket, model endpoint with autoscaling, gateway Lambda, API, alarms: one model, one stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        model_source: ModelSource,
        lambda_code_dir: Path = PROJECT_ROOT / "lambda_src",
        **kwargs: object,
    ) -> None:
        # The stack's assets (the model artifact among them) go under their own folder of the
        # bootstrap bucket, so the endpoint's role can read every model version this stack has
        # deployed, and nothing of other apps'.
        asset_folder = f"{construct_id}/"
        kwargs.setdefault("synthesizer", cdk.DefaultStackSynthesizer(bucket_prefix=asset_folder))
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        cfg = config
        self.config = cfg
        endpoint_family, endpoint_name = endpoint_names(self.stack_name, cfg.instance_type)

        # Encrypts the stack's log groups and its alarm topic.
        self.key = StackKey(
            self,
            "Key",
            description=f"Encrypts the log groups and alarm topic of stack {self.stack_name}",
            removal_policy=data_removal_policy(cfg.retain_data),
        )

        self.storage = Storage(
            self,
            "Storage",
            retain_data=cfg.retain_data,
            noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
        )

        # The role SageMaker training jobs run as (training/launch reads it from the outputs).
        self.training = TrainingAccess(
            self,
            "TrainingAccess",
            bucket=self.storage.bucket,
            data_prefix=training_layout.DATA_PREFIX,
            output_prefix=training_layout.OUTPUT_PREFIX,
            checkpoint_prefix=training_layout.CHECKPOINT_PREFIX,
            training_image_repositories=dlc_repository_arns(cfg.region),
        )

        if model_source.local_path is not None:
            asset = s3_assets.Asset(self, "ModelArtifact", path=str(model_source.local_path))
            model_data_url = asset.s3_object_url
            # Every version, not only this one: a rollback starts the previous model while the
            # role already has the new policy.
            model_read_arn = asset.bucket.arn_for_objects(f"{asset_folder}*")
        else:
            assert model_source.s3_url is not None
            model_data_url = model_source.s3_url
            versions = cfg.model_versions_url.removeprefix("s3://")
            model_read_arn = f"arn:{self.partition}:s3:::{versions}"
            if versions.endswith("/"):
                model_read_arn += "*"

        self.endpoint = ModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_family=endpoint_family,
            model_data_url=model_data_url,
            model_read_arn=model_read_arn,
            image=model_source.image,
            container_env=model_source.container_env,
            instance_type=cfg.instance_type,
            initial_instance_count=cfg.initial_instance_count,
            volume_kms=cfg.volume_kms and volume_kms_supported(cfg.instance_type),
            container_startup_timeout_s=cfg.container_startup_timeout_s,
            log_retention_days=cfg.log_retention_days,
            log_key=self.key.key,
            retain_data=cfg.retain_data,
            scale_to_zero=cfg.capacity_mode == "scale_to_zero",
            max_instances=cfg.max_instances,
        )
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            endpoint=self.endpoint.endpoint,
            endpoint_name=endpoint_name,
            variant_name=self.endpoint.variant_name,
            min_instances=cfg.min_instances,
            max_instances=cfg.max_instances,
            target_invocations_per_instance=cfg.target_invocations_per_instance,
            scale_in_cooldown_s=cfg.scale_in_cooldown_s,
            scale_out_cooldown_s=cfg.scale_out_cooldown_s,
            inference_component=self.endpoint.inference_component,
            inference_component_name=self.endpoint.inference_component_name,
            schedules=cfg.scaling_schedules,
        )
        invoke_arns = [
            self.format_arn(
                service="sagemaker", resource="endpoint", resource_name=f"{endpoint_family}*"
            )
        ]
        if self.endpoint.inference_component_name:
            # InvokeEndpoint with InferenceComponentName acts on the component as well
            # (resource type inference-component in the Service Authorization Reference).
            invoke_arns.append(
                self.format_arn(
                    service="sagemaker",
                    resource="inference-component",
                    resource_name=f"{endpoint_family}*",
                )
            )
        self.gateway = GatewayFunction(
            self,
            "Gateway",
            code_dir=lambda_code_dir,
            endpoint_name=endpoint_name,
            invoke_arns=invoke_arns,
            inference_component_name=self.endpoint.inference_component_name,
            cold_start_retry_after_s=cfg.cold_start_retry_after_s,
            endpoint_content_type=model_source.content_type,
            cors_allow_origin=cfg.cors_allow_origin,
            memory_mb=cfg.lambda_memory_mb,
            timeout_s=cfg.lambda_timeout_s,
            provisioned_concurrency=cfg.provisioned_concurrency,
            powertools_layer_version=cfg.powertools_layer_version,
            log_level=cfg.log_level,
            log_retention_days=cfg.log_retention_days,
            log_key=self.key.key,
            reserved_concurrency=cfg.lambda_reserved_concurrency,
            retain_data=cfg.retain_data,
            metrics_namespace="MlServing",
            service_name=f"{cfg.model}-{cfg.stage}",
        )
        self.api = PredictionApi(
            self,
            "Api",
            handler=self.gateway.alias,
            api_name=self.stack_name,
            stage_name=cfg.stage,
            api_auth=cfg.api_auth,
            throttle_rate_limit=cfg.throttle_rate_limit,
            throttle_burst_limit=cfg.throttle_burst_limit,
            quota_per_day=cfg.quota_per_day,
            cors_allow_origin=cfg.cors_allow_origin,
            binary_media_types=cfg.binary_media_types,
            log_retention_days=cfg.log_retention_days,
            log_key=self.key.key,
            retain_data=cfg.retain_data,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            endpoint_name=endpoint_name,
            variant_name=self.endpoint.variant_name,
            inference_component_name=self.endpoint.inference_component_name,
            no_capacity_alarm=self.autoscaling.no_capacity_alarm,
            function=self.gateway.alias,
            api=self.api.api,
            latency_alarm_p99_ms=cfg.latency_alarm_p99_ms,
            alarm_email=cfg.alarm_email,
            key=self.key.key,
        )
        self.endpoint.enable_auto_rollback(
            [self.monitoring.model_errors_alarm], bake_s=ROLLBACK_BAKE_S
        )

        self.client_access: ClientAccess | None = None
        if cfg.client_role_principal:
            self.client_access = ClientAccess(
                self,
                "ClientAccess",
                principal=cfg.client_role_principal,
                endpoint_arn=self.endpoint.endpoint_arn,
                api_invoke_arns=self.api.invoke_arns() if cfg.api_auth == "iam" else (),
            )

        self._own_api_execution_logs()
        self._acknowledge_helper_resources()
        self._outputs()

    def _outputs(self) -> None:
        cdk.CfnOutput(self, "ApiUrl", value=self.api.api.url, description="Base URL of the API")
        if self.api.api_key is not None:
            cdk.CfnOutput(
                self,
                "ApiKeyId",
                value=self.api.api_key.key_id,
                description="aws apigateway get-api-key --include-value --api-key <id> shows the key",
            )
        cdk.CfnOutput(self, "EndpointName", value=self.endpoint.endpoint_name)
        cdk.CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        cdk.CfnOutput(
            self,
            "TrainingRoleArn",
            value=self.training.role.role_arn,
            description="Execution role of SageMaker training jobs (python -m training.launch)",
        )
        if self.client_access is not None:
            cdk.CfnOutput(self, "ClientRoleArn", value=self.client_access.role.role_arn)

    def _own_api_execution_logs(self) -> None:
        """Declare the log group API Gateway writes the stage's execution logs (ERROR level) to.

        Left to itself API Gateway creates ``API-Gateway-Execution-Logs_<api id>/<stage>`` on
        the first logged error, never expiring, and `cdk destroy` leaves it behind. Declared here
        it follows the stage's retention and removal policy; the stage depends on it, so on
        destroy the stage (the only writer) is gone before the group is deleted.
        """
        api, stage = self.api.api, self.api.api.deployment_stage
        # The stage's name as configured: its `stage_name` attribute is a Ref to the stage,
        # which would make the group and the stage depend on each other.
        self.api_execution_logs = logs.LogGroup(
            self,
            "ApiExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{api.rest_api_id}/{self.config.stage}",
            retention=retention(self.config.log_retention_days),
            encryption_key=self.key.key,
            removal_policy=data_removal_policy(self.config.retain_data),
        )
        stage.node.add_dependency(self.api_execution_logs)

    def _acknowledge_helper_resources(self) -> None:
        """Resources that CDK itself adds (providers, account-level roles): findings, and logs.

        The bucket auto-delete provider (dev only) runs exactly when the stack is destroyed;
        without a declared log group Lambda would create ``/aws/lambda/<handler>`` then, with
        no expiry, and it would outlive the stack. Its logs go to a group the stack owns instead,
        deleted after the handler (which depends on it), and its role may write only there (no
        ``logs:CreateLogGroup``, so late log lines cannot re-create a deleted group).
        """
        auto_delete = self.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
        if auto_delete is None:
            return
        handler = auto_delete.node.try_find_child("Handler")
        role = auto_delete.node.try_find_child("Role")
        assert isinstance(handler, cdk.CfnResource) and isinstance(role, cdk.CfnResource)
        handler.add_deletion_override("DependsOn")
        self.auto_delete_logs = logs.LogGroup(
            self,
            "AutoDeleteObjectsLogs",
            retention=retention(self.config.log_retention_days),
            encryption_key=self.key.key,
            removal_policy=data_removal_policy(self.config.retain_data),
        )
        handler.add_property_override(
            "LoggingConfig", {"LogGroup": self.auto_delete_logs.log_group_name}
        )
        role.add_property_deletion_override("ManagedPolicyArns")
        role.add_property_override(
            "Policies",
            [
                {
                    "PolicyName": "WriteOwnLogs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": self.auto_delete_logs.log_group_arn,
                            }
                        ],
                    },
                }
            ],
        )


def endpoint_names(stack_name: str, instance_type: str) -> tuple[str, str]:
    """The stack's endpoint-name prefix, and its endpoint's name for ``instance_type``.

    The name is derived from the stack (unique per stage and model in an account and region),
    so the execution role can name its log group up front, and from the instance type, because
    SageMaker refuses UpdateEndpoint when it changes the instance type of a variant registered
    for autoscaling ("Update endpoints that use auto scaling", SageMaker developer guide).
    A new instance type is a new name, so CloudFormation creates a new endpoint (EndpointName is
    create-only), with a new scalable target, moves the Lambda to it, then deletes the old
    endpoint and target: one deploy, no downtime. Model changes keep the name and update in
    place, blue/green with rollback. Model names cannot contain "--", so no other stack's
    endpoint starts with the prefix.
    """
    family = f"{stack_name.lower()}--"
    return family, family + instance_type.removeprefix("ml.").replace(".", "-")

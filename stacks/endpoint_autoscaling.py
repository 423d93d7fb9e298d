"""Application Auto Scaling for the endpoint: its variant's instances, or its inference
component's copies (scale to zero), plus the stage's scheduled actions."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from constructs import Construct

from stacks.config import ScalingSchedule

COPY_COUNT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# SageMaker counts requests that found no copy to serve them in this metric; an alarm on it
# starts the scale-out from zero ("Scale an endpoint to zero instances", SageMaker developer
# guide). One failed request in a minute is enough: AWS's example uses GreaterThanThreshold 1,
# which waits for a second failure.
NO_CAPACITY_METRIC = "NoCapacityInvocationFailures"
NO_CAPACITY_PERIOD_S = 60
SCALE_FROM_ZERO_COOLDOWN_S = 60


class EndpointAutoscaling(Construct):
    """Target tracking between the minimum and maximum capacity, and the stage's schedules.

    always_on (``inference_component_name`` None): the variant's instances, on
    SageMakerVariantInvocationsPerInstance. scale_to_zero: the inference component's copies (one
    per instance) from 0, on SageMakerInferenceComponentInvocationsPerCopy, which scales in to 0
    once the component has had no invocations for Application Auto Scaling's scale-in window
    (15 minutes of low datapoints); a step policy driven by an alarm on NoCapacityInvocationFailures
    adds a copy when a request finds none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: cdk.CfnResource,
        endpoint_name: str,
        variant_name: str,
        min_instances: int,
        max_instances: int,
        target_invocations_per_instance: int,
        scale_in_cooldown_s: int,
        scale_out_cooldown_s: int,
        inference_component: cdk.CfnResource | None = None,
        inference_component_name: str | None = None,
        schedules: Sequence[ScalingSchedule] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        scale_to_zero = inference_component_name is not None
        floor = 0 if scale_to_zero else 1
        if not floor <= min_instances <= max_instances or max_instances < 1:
            raise ValueError(
                f"EndpointAutoscaling: need {floor} <= min_instances ({min_instances}) <= "
                f"max_instances ({max_instances}), max_instances >= 1"
            )
        if scale_to_zero and (inference_component is None or min_instances != 0):
            raise ValueError(
                "EndpointAutoscaling: scale to zero needs the inference component resource and "
                "min_instances 0"
            )
        if target_invocations_per_instance < 1:
            raise ValueError("EndpointAutoscaling: target_invocations_per_instance must be >= 1")

        if scale_to_zero:
            resource_id = f"inference-component/{inference_component_name}"
            dimension = COPY_COUNT_DIMENSION
        else:
            resource_id = f"endpoint/{endpoint_name}/variant/{variant_name}"
            dimension = "sagemaker:variant:DesiredInstanceCount"
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=resource_id,
            scalable_dimension=dimension,
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        # The variant exists only once the endpoint is in service, the component once created.
        self.target.node.add_dependency(endpoint)
        if inference_component is not None:
            self.target.node.add_dependency(inference_component)
        # Application Auto Scaling acts through its service-linked role
        # AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint, which RegisterScalableTarget
        # creates when it is missing and no RoleARN is given ("Service-linked roles for
        # Application Auto Scaling"). The role CDK creates for the target would go unused.
        cfn_target = self.target.node.default_child
        assert isinstance(cfn_target, cdk.CfnResource)
        cfn_target.add_property_deletion_override("RoleARN")
        self.target.node.try_remove_child("Role")

        self.policy = self.target.scale_to_track_metric(
            "InvocationsPerCopy" if scale_to_zero else "InvocationsPerInstance",
            # One copy per instance: the per-instance target is the per-copy target.
            target_value=float(target_invocations_per_instance),
            predefined_metric=(
                appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY
                if scale_to_zero
                else appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE
            ),
            scale_in_cooldown=cdk.Duration.seconds(scale_in_cooldown_s),
            scale_out_cooldown=cdk.Duration.seconds(scale_out_cooldown_s),
        )

        self.no_capacity_alarm: cloudwatch.Alarm | None = None
        if scale_to_zero:
            assert inference_component_name is not None
            # Target tracking cannot leave 0 (it has no copies to divide by): this step policy
            # does, on the alarm. MAXIMUM aggregation and a 0 lower bound as AWS's example.
            scale_from_zero = appscaling.StepScalingAction(
                self,
                "ScaleFromZero",
                scaling_target=self.target,
                adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
                cooldown=cdk.Duration.seconds(SCALE_FROM_ZERO_COOLDOWN_S),
            )
            scale_from_zero.add_adjustment(adjustment=1, lower_bound=0)
            self.no_capacity_alarm = cloudwatch.Alarm(
                self,
                "NoCapacity",
                metric=cloudwatch.Metric(
                    namespace="AWS/SageMaker",
                    metric_name=NO_CAPACITY_METRIC,
                    dimensions_map={"InferenceComponentName": inference_component_name},
                    statistic="Sum",
                    period=cdk.Duration.seconds(NO_CAPACITY_PERIOD_S),
                ),
                alarm_description=f"{inference_component_name}: a request found no model copy; "
                "adds one (scale out from zero)",
                threshold=1,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self.no_capacity_alarm.add_alarm_action(
                cw_actions.ApplicationScalingAction(scale_from_zero)
            )

        for entry in schedules:
            self.target.scale_on_schedule(
                f"Schedule-{entry.name}",
                schedule=appscaling.Schedule.expression(entry.schedule),
                time_zone=cdk.TimeZone.of(entry.timezone) if entry.timezone else None,
                min_capacity=entry.min_capacity,
                max_capacity=entry.max_capacity,
            )

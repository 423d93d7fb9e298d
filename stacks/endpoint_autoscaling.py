"""Application Auto Scaling for the endpoint's production variant."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from constructs import Construct


class EndpointAutoscaling(Construct):
    """Target tracking on SageMakerVariantInvocationsPerInstance between min and max instances."""

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
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= min_instances <= max_instances:
            raise ValueError(
                f"EndpointAutoscaling: need 1 <= min_instances ({min_instances}) <= "
                f"max_instances ({max_instances})"
            )
        if target_invocations_per_instance < 1:
            raise ValueError("EndpointAutoscaling: target_invocations_per_instance must be >= 1")

        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        # The variant exists only once the endpoint is in service.
        self.target.node.add_dependency(endpoint)
        # Application Auto Scaling acts through its service-linked role
        # AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint, which RegisterScalableTarget
        # creates when it is missing and no RoleARN is given ("Service-linked roles for
        # Application Auto Scaling"). The role CDK creates for the target would go unused.
        cfn_target = self.target.node.default_child
        assert isinstance(cfn_target, cdk.CfnResource)
        cfn_target.add_property_deletion_override("RoleARN")
        self.target.node.try_remove_child("Role")

        self.policy = self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=float(target_invocations_per_instance),
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=cdk.Duration.seconds(scale_in_cooldown_s),
            scale_out_cooldown=cdk.Duration.seconds(scale_out_cooldown_s),
        )

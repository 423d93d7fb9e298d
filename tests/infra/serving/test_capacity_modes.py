"""Capacity modes: prod keeps an always-on variant by default, dev scales to zero through an
inference component as AWS documents it ("Scale an endpoint to zero instances"), and schedules
become scheduled actions on whichever scalable target the mode has."""

from __future__ import annotations

from aws_cdk.assertions import Match

COMPONENT = "mlserving-dev-digits--m5-large-ic"


def _one(template, kind: str) -> dict:
    (resource,) = template.find_resources(kind).values()
    return resource


def test_prod_keeps_always_on_capacity_by_default(prod):
    _, template = prod
    template.resource_count_is("AWS::SageMaker::InferenceComponent", 0)
    (variant,) = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"][
        "ProductionVariants"
    ]
    assert "ModelName" in variant and "ManagedInstanceScaling" not in variant
    target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["MinCapacity"] == 1


def test_scale_to_zero_variant_has_no_model_and_managed_instances_from_zero(dev_scale_to_zero):
    _, template = dev_scale_to_zero
    config = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        # max_instances 2 copies, and room for a rolling update's batch (half of them) beside.
        "MaxInstanceCount": 3,
    }
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert variant["InstanceType"] == "ml.m5.large"
    assert "ExecutionRoleArn" in config


def test_the_model_is_an_inference_component_sized_one_copy_per_instance(dev_scale_to_zero):
    _, template = dev_scale_to_zero
    ic = _one(template, "AWS::SageMaker::InferenceComponent")["Properties"]
    assert ic["InferenceComponentName"] == COMPONENT
    assert ic["VariantName"] == "AllTraffic"
    assert ic["RuntimeConfig"] == {"CopyCount": 1}  # a fresh deploy starts warm
    assert "ModelName" in ic["Specification"]
    needs = ic["Specification"]["ComputeResourceRequirements"]
    # ml.m5.large: 2 vCPUs, 8 GiB. More than half its memory, so two copies never share one.
    assert 4096 < needs["MinMemoryRequiredInMb"] < 8192
    assert needs["NumberOfCpuCoresRequired"] == 1
    # Model updates roll the component's copies with the rollback alarms.
    rollout = ic["DeploymentConfig"]
    # The largest batch AWS accepts (5-50% of the copy count: a count of 1 is 100% of one copy).
    assert rollout["RollingUpdatePolicy"]["MaximumBatchSize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": 50,
    }
    assert rollout["AutoRollbackConfiguration"]["Alarms"]
    endpoint = _one(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert "DeploymentConfig" not in endpoint


def test_copies_scale_from_zero_on_the_no_capacity_alarm(dev_scale_to_zero):
    _, template = dev_scale_to_zero
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    ((target_id, target),) = targets.items()
    props = target["Properties"]
    assert props["ResourceId"] == f"inference-component/{COMPONENT}"
    assert props["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (0, 2)
    ic_id = next(iter(template.find_resources("AWS::SageMaker::InferenceComponent")))
    assert ic_id in target["DependsOn"]
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": target_id},
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
                    }
                }
            ),
        },
    )
    steps = template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )
    ((step_id, step),) = steps.items()
    assert step["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    assert step["Properties"]["StepScalingPolicyConfiguration"]["AdjustmentType"] == (
        "ChangeInCapacity"
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SageMaker",
            "MetricName": "NoCapacityInvocationFailures",
            "Dimensions": [{"Name": "InferenceComponentName", "Value": COMPONENT}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": step_id}],
        },
    )


def test_gateway_invokes_the_component_and_only_this_stacks(dev_scale_to_zero):
    _, template = dev_scale_to_zero
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {"INFERENCE_COMPONENT_NAME": COMPONENT, "NO_CAPACITY_RETRY_AFTER_S": "60"}
                )
            }
        },
    )
    policies = template.find_resources("AWS::IAM::Role")
    invoke = [
        st
        for role in policies.values()
        for pol in role["Properties"].get("Policies", [])
        for st in pol["PolicyDocument"]["Statement"]
        if st.get("Action") == "sagemaker:InvokeEndpoint"
    ]
    (statement,) = invoke
    rendered = str(statement["Resource"])
    assert ":endpoint/mlserving-dev-digits--*" in rendered
    assert ":inference-component/mlserving-dev-digits--*" in rendered


def test_model_metrics_use_the_component_dimension(dev_scale_to_zero):
    _, template = dev_scale_to_zero
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    model_errors = next(a for k, a in alarms.items() if k.startswith("MonitoringModelErrors"))
    dims = [
        m["MetricStat"]["Metric"]["Dimensions"]
        for m in model_errors["Properties"]["Metrics"]
        if "MetricStat" in m
    ]
    assert dims and all(d == [{"Name": "InferenceComponentName", "Value": COMPONENT}] for d in dims)


def test_schedules_are_scheduled_actions_of_the_target(dev_scale_to_zero, prod):
    _, template = dev_scale_to_zero
    target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    actions = {a["ScheduledActionName"]: a for a in target["ScheduledActions"]}
    assert actions["Schedule-nights"] == {
        "ScheduledActionName": "Schedule-nights",
        "Schedule": "cron(0 20 ? * MON-FRI *)",
        "Timezone": "Europe/Berlin",
        "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 0},
    }
    assert actions["Schedule-mornings"]["ScalableTargetAction"] == {
        "MinCapacity": 0,
        "MaxCapacity": 2,
    }
    # No schedule is forced on a stage that configures none.
    _, prod_template = prod
    assert (
        "ScheduledActions"
        not in _one(prod_template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    )


def test_always_on_schedules_raise_the_variants_minimum():
    from tests.infra.serving.conftest import S3_MODEL, synth

    _, template = synth(
        {
            "stage": "prod",
            "model_data_url": S3_MODEL,
            "framework": "pytorch",
            "framework_version": "1.4",
            "scaling_schedules": '[{"name": "business-hours", "schedule": '
            '"cron(0 8 ? * MON-FRI *)", "timezone": "America/New_York", "min_capacity": 2, '
            '"max_capacity": 4}]',
        }
    )
    target = _one(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ResourceId"].startswith("endpoint/")
    (action,) = target["ScheduledActions"]
    assert action["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 4}
    assert action["Timezone"] == "America/New_York"


def test_the_component_logs_to_its_own_group_which_the_stack_owns(dev_scale_to_zero):
    # Given an inference component, its containers log to /aws/sagemaker/InferenceComponents/<name>
    # (not the endpoint's group): the stack creates that group (retention, the stack's log key,
    # removed with a dev stack) before the component, and the execution role may write it.
    _, template = dev_scale_to_zero
    groups = template.find_resources(
        "AWS::Logs::LogGroup",
        {"Properties": {"LogGroupName": f"/aws/sagemaker/InferenceComponents/{COMPONENT}"}},
    )
    ((group_id, group),) = groups.items()
    assert group["Properties"]["RetentionInDays"] == 30
    assert "KmsKeyId" in group["Properties"]
    (component,) = template.find_resources("AWS::SageMaker::InferenceComponent").values()
    assert group_id in component["DependsOn"]
    statements = {
        statement["Sid"]: statement
        for role in template.find_resources("AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if "Sid" in statement
    }
    resources = statements["WriteEndpointLogs"]["Resource"]
    assert sorted(resources) == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/mlserving-dev-digits--*",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/InferenceComponents/"
        "mlserving-dev-digits--*",
    ]
    namespaces = statements["PublishEndpointMetrics"]["Condition"]["StringEquals"]
    assert namespaces["cloudwatch:namespace"] == [
        "/aws/sagemaker/Endpoints",
        "/aws/sagemaker/InferenceComponents",
    ]

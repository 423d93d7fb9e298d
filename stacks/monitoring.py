"""Alarms on every layer (endpoint, Lambda, API) and one dashboard."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

# SageMaker publishes invocation metrics in AWS/SageMaker but the instances' CPU, memory, disk
# (and GPU) utilization in this namespace (SageMaker developer guide, "Monitor SageMaker AI with
# Amazon CloudWatch": endpoint instance metrics).
INSTANCE_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
ALARM_PERIOD_S = 60
ALARM_EVALUATION_PERIODS = 3
# How long a blue/green update keeps the old fleet while the model-errors alarm watches the new
# one: its 3-minute window, plus the minutes CloudWatch takes to receive SageMaker's metrics and
# evaluate, with margin. AWS's all-at-once example bakes 600 s as well (SageMaker developer guide,
# "Use all at once traffic shifting").
ROLLBACK_BAKE_S = 600


class Monitoring(Construct):
    """CloudWatch alarms (to an SNS topic, optionally e-mailed) and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        function: lambda_.IFunction,
        inference_component_name: str | None = None,
        no_capacity_alarm: cloudwatch.IAlarm | None = None,
        api: apigw.RestApi,
        latency_alarm_p99_ms: int,
        alarm_email: str,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        # ``key``'s policy must let cloudwatch.amazonaws.com use it (see StackKey).
        self.topic = sns.Topic(
            self,
            "Alarms",
            display_name=f"Alarms of {endpoint_name}",
            master_key=key,
            enforce_ssl=True,
        )
        if alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(alarm_email))

        dims = {"EndpointName": endpoint_name, "VariantName": variant_name}
        # An inference component's invocation metrics carry its name as their only dimension
        # (SageMaker developer guide, "Inference component metrics"); the instances' utilization
        # stays per endpoint and variant.
        invocation_dims = (
            {"InferenceComponentName": inference_component_name}
            if inference_component_name
            else dims
        )
        period = cdk.Duration.seconds(ALARM_PERIOD_S)

        def endpoint_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map=invocation_dims,
                statistic=statistic,
                period=period,
            )

        def instance_metric(name: str) -> cloudwatch.Metric:
            """Instance utilization: published in /aws/sagemaker/Endpoints, not AWS/SageMaker.

            CPUUtilization is the sum over the instance's cores (up to 100% per core).
            """
            return cloudwatch.Metric(
                namespace=INSTANCE_METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=dims,
                statistic="Average",
                period=period,
            )

        invocations = endpoint_metric("Invocations", "Sum")
        client_errors = endpoint_metric("Invocation4XXErrors", "Sum")
        # What the model got wrong, not what callers sent wrong: the container's 5xx answers, and
        # the non-2xx invocations that are not its 4xx answers (timeouts, broken connections,
        # malformed responses; InvocationModelErrors counts 4xx too). MAX, not a sum, so a 5xx
        # that both metrics count is counted once.
        model_failures = cloudwatch.MathExpression(
            expression="MAX([FILL(e5, 0), FILL(me, 0) - FILL(e4, 0)])",
            using_metrics={
                "e5": endpoint_metric("Invocation5XXErrors", "Sum"),
                "me": endpoint_metric("InvocationModelErrors", "Sum"),
                "e4": client_errors,
            },
            label="Model failures (5xx, timeouts)",
            period=period,
        )
        model_latency = endpoint_metric("ModelLatency", "p99")  # microseconds
        overhead_latency = endpoint_metric("OverheadLatency", "p99")  # microseconds

        def on_any(metric: cloudwatch.IMetric, alarm_id: str, description: str) -> cloudwatch.Alarm:
            """Alarm when ``metric`` (a per-minute count) is non-zero in 2 of 3 minutes."""
            return cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
                alarm_description=description,
                threshold=1,
                evaluation_periods=ALARM_EVALUATION_PERIODS,
                datapoints_to_alarm=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        # Also the blue/green rollback alarm: it must fire within ROLLBACK_BAKE_S.
        self.model_errors_alarm = on_any(
            model_failures,
            "ModelErrors",
            f"{endpoint_name}: the model failed invocations (5xx, timeouts); callers' 4xx "
            "mistakes are not counted",
        )
        self.model_latency_alarm = model_latency.create_alarm(
            self,
            "ModelLatency",
            alarm_description=f"{endpoint_name}: p99 model latency above {latency_alarm_p99_ms} ms",
            threshold=latency_alarm_p99_ms * 1000,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.lambda_errors_alarm = on_any(
            function.metric_errors(period=period, statistic="Sum"),
            "LambdaErrors",
            "Gateway Lambda: unhandled errors",
        )
        self.lambda_throttles_alarm = on_any(
            function.metric_throttles(period=period, statistic="Sum"),
            "LambdaThrottles",
            "Gateway Lambda: invocations throttled (concurrency exhausted)",
        )
        self.api_5xx_alarm = on_any(
            api.metric_server_error(period=period, statistic="Sum"),
            "Api5xx",
            "Prediction API: 5xx answers",
        )
        self.alarms = [
            self.model_errors_alarm,
            self.model_latency_alarm,
            self.lambda_errors_alarm,
            self.lambda_throttles_alarm,
            self.api_5xx_alarm,
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        # enforce_ssl gives the topic a policy with only a Deny, and a topic policy replaces the
        # default one that let this account's services publish: without this statement CloudWatch
        # is "not authorized to perform: SNS:Publish ... because no resource-based policy allows
        # it" (aws/aws-cdk#11121). Exactly these alarms, of this account.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TheseAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": [a.alarm_arn for a in self.alarms]},
                    "StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account},
                },
            )
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests", left=[api.metric_count(period=period), invocations]
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    api.metric_client_error(period=period),
                    api.metric_server_error(period=period),
                    client_errors,
                    model_failures,
                    function.metric_errors(period=period),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Latency (ms)",
                left=[
                    api.metric_latency(period=period, statistic="p50"),
                    api.metric_latency(period=period, statistic="p99"),
                    function.metric_duration(period=period, statistic="p99"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Model latency p99 (µs)", left=[model_latency, overhead_latency]
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Instances: CPU, memory and disk (%)",
                left=[
                    instance_metric("CPUUtilization"),
                    instance_metric("MemoryUtilization"),
                    instance_metric("DiskUtilization"),
                ],
                width=24,
            )
        )
        shown: list[cloudwatch.IAlarm] = [*self.alarms]
        if no_capacity_alarm is not None:
            # Not e-mailed: it fires on every scale-out from zero, by design.
            shown.append(no_capacity_alarm)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=shown, width=24)
        )

"""Small serving templates in both capacity modes, shaped as the CDK app synthesizes them."""

from __future__ import annotations

import copy
from typing import Any

COMMON: dict[str, Any] = {
    "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
    "VolumeKey": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
    "Fn": {
        "Type": "AWS::Lambda::Function",
        "Properties": {"MemorySize": 1024, "TracingConfig": {"Mode": "Active"}},
    },
    "Alias": {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "FunctionName": {"Ref": "Fn"},
            "Name": "live",
            "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2},
        },
    },
    # CDK's S3 auto-delete provider: a function the API never calls.
    "Provider": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 128}},
    "AutoDelete": {
        "Type": "Custom::S3AutoDeleteObjects",
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}},
    },
    "Stage": {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {
            "AccessLogSetting": {"DestinationArn": "arn", "Format": "{}"},
            "MethodSettings": [{"LoggingLevel": "ERROR", "HttpMethod": "*"}],
            "TracingEnabled": True,
        },
    },
    "LatencyAlarm": {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"MetricName": "ModelLatency", "Period": 60},
    },
    "ErrorsAlarm": {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Metrics": [
                {"Id": "expr", "Expression": "e5 + e4"},
                {"Id": "e5", "MetricStat": {"Metric": {"MetricName": "5XX"}, "Period": 60}},
                {"Id": "e4", "MetricStat": {"Metric": {"MetricName": "4XX"}, "Period": 60}},
            ]
        },
    },
    "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
    "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
}

ALWAYS_ON: dict[str, Any] = {
    "Config": {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [
                {
                    "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "VariantName": "AllTraffic",
                }
            ]
        },
    },
    "Target": {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 1,
            "MaxCapacity": 4,
        },
    },
}

SCALE_TO_ZERO: dict[str, Any] = {
    "Config": {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [
                {
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "VariantName": "AllTraffic",
                    "ManagedInstanceScaling": {
                        "Status": "ENABLED",
                        "MinInstanceCount": 0,
                        "MaxInstanceCount": 3,
                    },
                }
            ]
        },
    },
    "Component": {
        "Type": "AWS::SageMaker::InferenceComponent",
        "Properties": {"RuntimeConfig": {"CopyCount": 1}},
    },
    "Target": {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
            "MinCapacity": 0,
            "MaxCapacity": 3,
            "ScheduledActions": [
                {
                    "ScheduledActionName": "business-hours",
                    "Schedule": "cron(0 8 ? * MON-FRI *)",
                    "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 3},
                }
            ],
        },
    },
}


def template(shape: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": copy.deepcopy({**COMMON, **shape})}

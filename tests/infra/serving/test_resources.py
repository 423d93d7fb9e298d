"""The serving resources and their wiring, looked up by type and properties."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Capture, Match

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _one(template, kind: str, props: dict | None = None) -> tuple[str, dict]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return next(iter(found.items()))


def test_a_gpu_instance_gets_the_cuda_ray_serve_image_and_the_gpu_host_ami(dev, iam_auth):
    # Given ml.g5.xlarge, then the CUDA image and the AMI with drivers it needs; on CPU neither.
    _, template = iam_auth
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cuda-v1.4"
            }
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "InstanceType": "ml.g5.xlarge",
                        "InferenceAmiVersion": "al2-ami-sagemaker-inference-gpu-3-1",
                    }
                )
            ]
        },
    )
    _, cpu_template = dev
    (variant,) = next(iter(cpu_template.find_resources("AWS::SageMaker::EndpointConfig").values()))[
        "Properties"
    ]["ProductionVariants"]
    assert "InferenceAmiVersion" not in variant


def test_model_uses_the_offline_resolved_serving_image_and_artifact(dev, prod):
    _, template = dev
    # PyTorch serves on AWS's Ray Serve container, the CPU image pinned to v1.4, configured for
    # Ray's fast (HAProxy) ingress.
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cpu-v1.4",
                "ModelDataUrl": "s3://my-models-bucket/digits/v3/model.tar.gz",
                "Environment": {
                    "RAY_SERVE_ENABLE_HA_PROXY": "1",
                    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                    "RAY_SERVE_LOG_TO_STDERR": "1",  # else the model's logs miss CloudWatch
                    "RAY_SERVE_HAPROXY_NBTHREAD": "1",
                    "RAYSERVE_BACKEND_TIMEOUT": "60",
                },
            },
            "EnableNetworkIsolation": True,
        },
    )
    # A local artifact becomes a CDK asset; the manifest picks the TF Serving container and the
    # configured container env reaches the model.
    _, prod_template = prod
    prod_template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.19-cpu",
                # CDK names the asset object <sha256>.gz (aws/aws-cdk#30257); SageMaker reads
                # the gzipped tar whatever its key.
                "ModelDataUrl": Match.string_like_regexp(
                    r"^s3://cdk-hnb659fds-assets-123456789012-us-east-1/MlServing-prod-sentiment/"
                    r"[0-9a-f]{64}\.gz$"
                ),
                "Environment": {"SAGEMAKER_TFS_ENABLE_BATCHING": "true"},
            }
        },
    )


def test_endpoint_config_has_one_variant_with_an_encrypted_volume(dev, iam_auth):
    _, template = dev
    key_id, _ = _one(
        template,
        "AWS::KMS::Key",
        {"Description": Match.string_like_regexp("storage volumes of SageMaker endpoint")},
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1,
                    "ModelName": {"Fn::GetAtt": [Match.any_value(), "ModelName"]},
                    "ContainerStartupHealthCheckTimeoutInSeconds": 600,
                }
            ],
            "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )
    # Instances with NVMe instance storage refuse a volume key: none is set for them.
    _, gpu_template = iam_auth
    _, config = _one(gpu_template, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" not in config["Properties"]
    assert config["Properties"]["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert (
        gpu_template.find_resources(
            "AWS::KMS::Key",
            {"Properties": {"Description": Match.string_like_regexp("storage volumes")}},
        )
        == {}
    )


def test_endpoint_is_named_from_the_stack_and_rolls_back_on_model_failures(dev):
    _, template = dev
    alarm = Capture()
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": endpoint["Properties"]["EndpointName"],
            "EndpointConfigName": {"Fn::GetAtt": [Match.any_value(), "EndpointConfigName"]},
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": {
                            "Type": "ALL_AT_ONCE",
                            "WaitIntervalInSeconds": 0,
                        }
                    }
                ),
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": {"Ref": alarm}}]},
            },
        },
    )
    assert endpoint["Properties"]["EndpointName"] == "mlserving-dev-digits--m5-large"
    rollback_alarm = template.to_json()["Resources"][alarm.as_string()]["Properties"]
    # Callers' mistakes (the container's 4xx answers) must not roll a good model back: the alarm
    # counts the 5xx answers, or the model errors that are not 4xx, whichever is larger.
    (expression,) = [m for m in rollback_alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "MAX([FILL(e5, 0), FILL(me, 0) - FILL(e4, 0)])"
    inputs = {
        m["Id"]: m["MetricStat"]["Metric"]["MetricName"]
        for m in rollback_alarm["Metrics"]
        if "MetricStat" in m
    }
    assert inputs == {
        "e5": "Invocation5XXErrors",
        "me": "InvocationModelErrors",
        "e4": "Invocation4XXErrors",
    }
    assert "Invocation4XXErrors" not in json.dumps(
        [m for m in rollback_alarm["Metrics"] if m["Id"] != "e4"]
    )


def test_blue_green_update_bakes_long_enough_for_the_rollback_alarm_to_fire(dev, prod):
    for _, template in (dev, prod):
        (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
        policy = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        alarm_name = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"][
            "Alarms"
        ][0]["AlarmName"]["Ref"]
        alarm = template.to_json()["Resources"][alarm_name]["Properties"]
        periods = {m["MetricStat"]["Period"] for m in alarm["Metrics"] if "MetricStat" in m}
        (period_s,) = periods
        window_s = period_s * alarm["EvaluationPeriods"]
        # The old fleet stays (the baking period) until the alarm has had its whole window plus
        # CloudWatch's few minutes of metric delivery and evaluation.
        assert policy["TerminationWaitInSeconds"] >= window_s + 300
        assert policy["TerminationWaitInSeconds"] <= 3600
        # The whole deployment (new instances, container start-up, baking) fits its time limit.
        (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
        startup_s = config["Properties"]["ProductionVariants"][0][
            "ContainerStartupHealthCheckTimeoutInSeconds"
        ]
        assert (
            policy["TerminationWaitInSeconds"] + startup_s
            < policy["MaximumExecutionTimeoutInSeconds"]
            <= 28_800
        )


def test_an_update_keeps_the_instance_count_autoscaling_set(dev, prod):
    # Without it the green fleet starts at InitialInstanceCount, whatever load it takes over.
    for _, template in (dev, prod):
        template.has_resource_properties(
            "AWS::SageMaker::Endpoint", {"RetainAllVariantProperties": True}
        )


def test_autoscaling_tracks_invocations_per_instance(dev, prod):
    _, template = dev
    target_id, _ = _one(
        template,
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/mlserving-dev-digits--m5-large/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 1,
            "MaxCapacity": 2,
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": target_id},
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": 70,
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        },
    )
    _, prod_template = prod
    prod_template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 4}
    )


def test_lambda_has_what_the_handler_needs(dev):
    _, template = dev
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "prediction_gateway.handler.lambda_handler",
            "Runtime": "python3.13",
            "Timeout": 29,
            "MemorySize": 512,
            "TracingConfig": {"Mode": "Active"},
            "Layers": [
                {
                    "Fn::Sub": Match.string_like_regexp(
                        r":017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27$"
                    )
                }
            ],
            "Environment": {
                "Variables": {
                    "ENDPOINT_NAME": "mlserving-dev-digits--m5-large",
                    "ENDPOINT_CONTENT_TYPE": "application/json",
                    "CORS_ALLOW_ORIGIN": "",
                    "MAX_PAYLOAD_BYTES": "6291456",
                    "INVOKE_CONNECT_TIMEOUT_S": "2",
                    # Answers before the function's own 29 s timeout and API Gateway's 29 s.
                    "INVOKE_READ_TIMEOUT_S": "25",
                    "INVOKE_MAX_ATTEMPTS": "2",
                    "POWERTOOLS_SERVICE_NAME": "digits-dev",
                    "POWERTOOLS_METRICS_NAMESPACE": "MlServing",
                    "LOG_LEVEL": "DEBUG",
                }
            },
        },
    )


def test_handler_accepts_the_environment_the_stack_sets(dev, prod):
    # The stack's variables go through the handler's own validation (what its init runs), so a
    # variable the stack forgets or sets wrong fails here, not at deploy time.
    from prediction_gateway import config as gateway

    for _, template in (dev, prod):
        (function,) = template.find_resources(
            "AWS::Lambda::Function",
            {"Properties": {"Handler": "prediction_gateway.handler.lambda_handler"}},
        ).values()
        env = function["Properties"]["Environment"]["Variables"]
        config = gateway.Config.from_env({**env, "AWS_REGION": "us-east-1"})
        assert config.endpoint_name == env["ENDPOINT_NAME"]
        assert config.endpoint_content_type == env["ENDPOINT_CONTENT_TYPE"]
        # Connect + read must finish inside the function's timeout and API Gateway's 29 s.
        timeout_s = function["Properties"]["Timeout"]
        assert (
            float(env["INVOKE_CONNECT_TIMEOUT_S"]) + float(env["INVOKE_READ_TIMEOUT_S"]) < timeout_s
        )
    with pytest.raises(gateway.ConfigError, match="ENDPOINT_NAME"):
        gateway.Config.from_env({"AWS_REGION": "us-east-1"})


def test_api_integrates_with_the_alias_never_latest(dev, prod):
    _, template = dev
    alias_id, alias = _one(template, "AWS::Lambda::Alias", {"Name": "live"})
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"], (
        "dev: provisioned concurrency off"
    )
    version_ref = alias["Properties"]["FunctionVersion"]
    assert version_ref["Fn::GetAtt"][1] == "Version"
    methods = template.find_resources(
        "AWS::ApiGateway::Method",
        {"Properties": {"HttpMethod": Match.string_like_regexp("^(GET|POST)$")}},
    )
    assert len(methods) == 2
    for method in methods.values():
        uri = json.dumps(method["Properties"]["Integration"]["Uri"])
        assert alias_id in uri, "integration targets the alias"
        assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    permissions = template.find_resources("AWS::Lambda::Permission")
    assert permissions and all(
        p["Properties"]["FunctionName"] == {"Ref": alias_id} for p in permissions.values()
    )
    _, prod_template = prod
    prod_template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}},
    )


def test_stage_throttles_logs_and_traces(dev):
    _, template = dev
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": True,
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("requestId"),
            },
            "MethodSettings": [
                Match.object_like(
                    {
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "ThrottlingRateLimit": 50,
                        "ThrottlingBurstLimit": 100,
                        "LoggingLevel": "ERROR",
                        "DataTraceEnabled": False,
                        "MetricsEnabled": True,
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "BinaryMediaTypes": ["image/png", "image/jpeg", "application/x-npy"],
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
        },
    )


def test_api_key_auth_with_usage_plan_by_default(dev, prod):
    _, template = dev
    methods = template.find_resources(
        "AWS::ApiGateway::Method",
        {"Properties": {"HttpMethod": Match.string_like_regexp("^(GET|POST)$")}},
    )
    assert {m["Properties"]["ApiKeyRequired"] for m in methods.values()} == {True}
    key_id, _ = _one(template, "AWS::ApiGateway::ApiKey")
    plan_id, plan = _one(template, "AWS::ApiGateway::UsagePlan")
    assert plan["Properties"]["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    assert "Quota" not in plan["Properties"]
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey",
        {"KeyId": {"Ref": key_id}, "UsagePlanId": {"Ref": plan_id}, "KeyType": "API_KEY"},
    )
    template.has_output("ApiKeyId", {"Value": {"Ref": key_id}})
    _, prod_template = prod
    prod_template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 200, "BurstLimit": 400},
            "Quota": {"Limit": 10000, "Period": "DAY"},
        },
    )


def test_iam_auth_replaces_api_keys(iam_auth):
    _, template = iam_auth
    methods = template.find_resources(
        "AWS::ApiGateway::Method",
        {"Properties": {"HttpMethod": Match.string_like_regexp("^(GET|POST)$")}},
    )
    assert {m["Properties"]["AuthorizationType"] for m in methods.values()} == {"AWS_IAM"}
    assert template.find_resources("AWS::ApiGateway::ApiKey") == {}
    assert "ApiKeyId" not in template.find_outputs("*")


def test_predict_body_is_validated_before_the_lambda_runs(dev):
    _, template = dev
    model_id, model = _one(template, "AWS::ApiGateway::Model", {"ContentType": "application/json"})
    schema = model["Properties"]["Schema"]
    assert {tuple(s["required"]) for s in schema["anyOf"]} == {
        ("instances",),
        ("inputs",),
        ("image",),
        ("images",),
        ("text",),
        ("texts",),
    }
    validator_id, _ = _one(
        template, "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "RequestModels": {"application/json": {"Ref": model_id}},
            "RequestValidatorId": {"Ref": validator_id},
        },
    )


def test_gateway_errors_use_the_lambdas_error_shape(dev, prod):
    _, template = dev
    responses = template.find_resources("AWS::ApiGateway::GatewayResponse")
    by_type = {r["Properties"]["ResponseType"]: r["Properties"] for r in responses.values()}
    assert by_type["THROTTLED"]["StatusCode"] == "429"
    assert by_type["INVALID_API_KEY"]["StatusCode"] == "403"
    assert by_type["BAD_REQUEST_BODY"]["StatusCode"] == "400"
    for props in by_type.values():
        body = props["ResponseTemplates"]["application/json"]
        assert (
            body.startswith('{"error": {"code": "') and '"requestId": "$context.requestId"' in body
        )
    # With CORS on, errors carry the CORS header too.
    _, prod_template = prod
    for response in prod_template.find_resources("AWS::ApiGateway::GatewayResponse").values():
        assert response["Properties"]["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
        }
    prod_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({"CORS_ALLOW_ORIGIN": "https://app.example.com"})
            }
        },
    )


def test_alarms_cover_every_layer_and_page_the_topic(dev):
    _, template = dev
    topic_id, _ = _one(template, "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 5
    described = {a["Properties"]["AlarmDescription"]: a["Properties"] for a in alarms.values()}
    names = " ".join(described)
    for text in (
        "model failed",
        "p99 model latency",
        "unhandled errors",
        "throttled",
        "5xx answers",
    ):
        assert text in names, text
    for props in described.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}]
    latency = next(p for d, p in described.items() if "latency" in d)
    assert latency["MetricName"] == "ModelLatency" and latency["Threshold"] == 1_000_000  # µs
    _one(template, "AWS::CloudWatch::Dashboard")


def test_outputs_name_what_a_user_needs(dev):
    _, template = dev
    outputs = template.find_outputs("*")
    assert {"ApiUrl", "ApiKeyId", "EndpointName", "BucketName", "TrainingRoleArn"} <= set(outputs)
    assert outputs["EndpointName"]["Value"] == "mlserving-dev-digits--m5-large"
    assert "ClientRoleArn" not in outputs, "no client role unless a principal is configured"


def test_each_stacks_api_has_its_own_name_so_its_metrics_and_alarms_are_its_own(dev, prod):
    # API Gateway keys REST API metrics by ApiName: with one name for every stack, dev's 5xx
    # would trip prod's alarm.
    names = set()
    for stack, template in (dev, prod):
        (api,) = template.find_resources("AWS::ApiGateway::RestApi").values()
        assert api["Properties"]["Name"] == stack.stack_name
        names.add(api["Properties"]["Name"])
        (alarm,) = template.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"Namespace": "AWS/ApiGateway"}}
        ).values()
        assert {"Name": "ApiName", "Value": stack.stack_name} in alarm["Properties"]["Dimensions"]
    assert names == {"MlServing-dev-digits", "MlServing-prod-sentiment"}


def _dashboard_widgets(template) -> list[dict]:
    """The dashboard's widgets, with every token in its body replaced by a placeholder."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        _, parts = body["Fn::Join"]
        body = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(body)["widgets"]


def test_dashboard_reads_instance_utilization_from_the_endpoints_namespace(dev):
    _, template = dev
    metrics = [
        m
        for w in _dashboard_widgets(template)
        for m in w.get("properties", {}).get("metrics", [])
        if isinstance(m[0], str)
    ]
    # A metric line is [namespace, name, dim, value, ...]; "." repeats the previous line's field.
    namespaces = {}
    previous = None
    for line in metrics:
        namespace = previous if line[0] == "." else line[0]
        namespaces[line[1]] = namespace
        previous = namespace
    for name in ("CPUUtilization", "MemoryUtilization", "DiskUtilization"):
        assert namespaces.get(name) == "/aws/sagemaker/Endpoints", name
    assert namespaces["Invocations"] == "AWS/SageMaker"
    assert namespaces["ModelLatency"] == "AWS/SageMaker"

"""Configuration: env vars validated at init, with messages that name the variable."""

from __future__ import annotations

import pytest
from prediction_gateway.client import create_runtime_client
from prediction_gateway.config import API_GATEWAY_TIMEOUT_S, Config, ConfigError

MINIMAL = {"ENDPOINT_NAME": "my-endpoint", "AWS_REGION": "eu-west-1"}


def test_defaults_match_the_stack_contract() -> None:
    config = Config.from_env(MINIMAL)
    assert config.endpoint_name == "my-endpoint"
    assert config.region == "eu-west-1"
    assert config.endpoint_content_type == "application/json"
    assert config.cors_allow_origin == ""
    assert config.max_payload_bytes == 6_291_456
    assert config.connect_timeout_s == 2.0
    assert config.read_timeout_s == 25.0
    assert config.max_attempts == 2
    assert config.metrics_namespace == "MlServing"
    assert config.service_name == "prediction-api"
    assert config.log_level == "INFO"


def test_every_variable_is_read() -> None:
    config = Config.from_env(
        {
            **MINIMAL,
            "ENDPOINT_CONTENT_TYPE": "application/jsonlines",
            "CORS_ALLOW_ORIGIN": "https://app.example.com",
            "MAX_PAYLOAD_BYTES": "1048576",
            "INVOKE_CONNECT_TIMEOUT_S": "1.5",
            "INVOKE_READ_TIMEOUT_S": "10",
            "INVOKE_MAX_ATTEMPTS": "3",
            "POWERTOOLS_SERVICE_NAME": "digits-api",
            "POWERTOOLS_METRICS_NAMESPACE": "MlServing/dev",
            "LOG_LEVEL": "debug",
        }
    )
    assert (config.endpoint_content_type, config.cors_allow_origin) == (
        "application/jsonlines",
        "https://app.example.com",
    )
    assert (config.max_payload_bytes, config.connect_timeout_s, config.read_timeout_s) == (
        1_048_576,
        1.5,
        10.0,
    )
    assert config.max_attempts == 3
    assert (config.service_name, config.metrics_namespace, config.log_level) == (
        "digits-api",
        "MlServing/dev",
        "DEBUG",
    )


def test_missing_endpoint_name_fails_fast_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match="ENDPOINT_NAME is required"):
        Config.from_env({"AWS_REGION": "us-east-1"})


def test_region_falls_back_to_aws_default_region_and_is_required() -> None:
    assert Config.from_env({"ENDPOINT_NAME": "e", "AWS_DEFAULT_REGION": "ap-south-1"}).region == (
        "ap-south-1"
    )
    with pytest.raises(ConfigError, match="AWS_REGION is not set"):
        Config.from_env({"ENDPOINT_NAME": "e"})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ENDPOINT_NAME", "has_underscore", "not a SageMaker endpoint name"),
        ("ENDPOINT_NAME", "x" * 64, "not a SageMaker endpoint name"),
        ("ENDPOINT_CONTENT_TYPE", "json", "not a media type"),
        ("CORS_ALLOW_ORIGIN", "app.example.com", "CORS_ALLOW_ORIGIN"),
        ("CORS_ALLOW_ORIGIN", "https://a.example.com, https://b.example.com", "one origin"),
        ("MAX_PAYLOAD_BYTES", "6291457", "outside"),
        ("MAX_PAYLOAD_BYTES", "6MB", "not an integer"),
        ("INVOKE_CONNECT_TIMEOUT_S", "0", "outside"),
        ("INVOKE_READ_TIMEOUT_S", "fast", "not a number"),
        ("INVOKE_READ_TIMEOUT_S", "28", "under API Gateway's 29 s"),
        ("INVOKE_MAX_ATTEMPTS", "0", "outside"),
        ("INVOKE_MAX_ATTEMPTS", "1.5", "not an integer"),
        ("POWERTOOLS_METRICS_NAMESPACE", "has spaces", "not a valid namespace"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({**MINIMAL, name: value})
    assert name in str(info.value) or "INVOKE_" in str(info.value)
    assert expected in str(info.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"MAX_PAYLOAD_BYTES": "-1", "LOG_LEVEL": "loud"})
    message = str(info.value)
    for name in ("ENDPOINT_NAME", "AWS_REGION", "MAX_PAYLOAD_BYTES", "LOG_LEVEL"):
        assert name in message


def test_client_gets_explicit_timeouts_and_standard_bounded_retries() -> None:
    config = Config.from_env(
        {**MINIMAL, "INVOKE_CONNECT_TIMEOUT_S": "1", "INVOKE_READ_TIMEOUT_S": "20"}
    )
    client = create_runtime_client(config)
    assert client.meta.service_model.service_name == "sagemaker-runtime"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.connect_timeout == 1.0
    assert client.meta.config.read_timeout == 20.0
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert config.connect_timeout_s + config.read_timeout_s < API_GATEWAY_TIMEOUT_S

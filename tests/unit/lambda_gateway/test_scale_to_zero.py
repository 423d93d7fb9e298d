"""A scale-to-zero stage: the gateway names the inference component, and SageMaker's no-capacity
answer (a component scaled to zero copies) becomes 503 ModelStarting with Retry-After."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY
from prediction_gateway.config import Config, ConfigError

from tests.support.lambda_gateway import BASE_ENV, error_of, invoke_response, json_event

COMPONENT = "mlserving-dev-digits--m5-large-ic"
# SageMaker's exact message while an inference component has no copy (AWS ML blog, "Unlock cost
# savings with the new scale down to zero feature in SageMaker Inference").
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


def test_the_invocation_names_the_inference_component(make_gateway) -> None:
    gw = make_gateway(INFERENCE_COMPONENT_NAME=COMPONENT)
    gw.stubber.add_response(
        "invoke_endpoint",
        invoke_response(),
        {
            "EndpointName": gw.gateway.config.endpoint_name,
            "InferenceComponentName": COMPONENT,
            "Body": ANY,
            "ContentType": "application/json",
            "Accept": "application/json",
            "InferenceId": ANY,
        },
    )
    response = gw.handle(json_event({"instances": [[1]]}))
    gw.stubber.assert_no_pending_responses()
    assert response["statusCode"] == 200


def test_without_a_component_the_call_names_none(gw) -> None:
    gw.expect_invoke(b'{"instances": [[1]]}')  # exact params: no InferenceComponentName
    assert gw.handle(json_event({"instances": [[1]]}))["statusCode"] == 200


@pytest.mark.parametrize(
    ("env", "retry_after"), [({}, "60"), ({"NO_CAPACITY_RETRY_AFTER_S": "90"}, "90")]
)
def test_no_capacity_is_503_model_starting_with_retry_after(
    make_gateway, env: dict[str, str], retry_after: str
) -> None:
    gw = make_gateway(INFERENCE_COMPONENT_NAME=COMPONENT, **env)
    gw.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=NO_CAPACITY,
        http_status_code=400,
    )
    response = gw.handle(json_event({"instances": [[1]]}))
    gw.stubber.assert_no_pending_responses()
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == retry_after
    error = error_of(response)
    assert error["code"] == "ModelStarting"
    assert "model is starting" in error["message"]
    assert f"retry after {retry_after} seconds" in error["message"]
    assert json.loads(response["body"])["requestId"]


def test_other_validation_errors_stay_400(make_gateway) -> None:
    gw = make_gateway(INFERENCE_COMPONENT_NAME=COMPONENT)
    gw.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="1 validation error: Body too large",
        http_status_code=400,
    )
    assert gw.handle(json_event({"instances": [[1]]}))["statusCode"] == 400


@pytest.mark.parametrize(
    ("key", "value"),
    [("INFERENCE_COMPONENT_NAME", "bad name!"), ("NO_CAPACITY_RETRY_AFTER_S", "0")],
)
def test_bad_settings_are_named(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Config.from_env({**BASE_ENV, key: value})

"""Every SageMaker Runtime error, as the real service model shapes it (botocore Stubber), maps to
the documented status and error shape; timeouts and connection failures too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from tests.support.lambda_gateway import error_of, json_event

LOG_STREAM = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep:log-stream:AllTraffic/i-0"


def stub_error(gw: Any, code: str, status: int, message: str = "boom", **modeled: Any) -> None:
    gw.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=message,
        http_status_code=status,
        modeled_fields=modeled or None,
    )


@pytest.mark.parametrize(
    ("code", "http_status", "status", "our_code", "retry_after"),
    [
        ("ValidationError", 400, 400, "InvalidInput", None),
        ("ModelNotReadyException", 429, 429, "ModelNotReady", "5"),
        ("ThrottlingException", 400, 429, "Throttled", "1"),
        ("ServiceUnavailable", 503, 503, "ServiceUnavailable", "5"),
        ("InternalFailure", 500, 503, "ServiceUnavailable", "5"),
        ("InternalDependencyException", 530, 503, "ServiceUnavailable", "5"),
        ("AccessDeniedException", 403, 500, "InternalError", None),
    ],
)
def test_endpoint_errors_map_to_documented_statuses(
    gw, code: str, http_status: int, status: int, our_code: str, retry_after: str | None
) -> None:
    stub_error(
        gw, code, http_status, message="User: arn:aws:sts::123:assumed-role/x is not allowed"
    )
    response = gw.handle(json_event({"text": "a"}))
    gw.stubber.assert_no_pending_responses()
    assert response["statusCode"] == status
    assert error_of(response)["code"] == our_code
    assert response["headers"].get("Retry-After") == retry_after
    if code == "AccessDeniedException":
        # A deployment fault never leaks ARNs or IAM details to the caller.
        assert "arn:" not in response["body"]


def test_validation_error_message_is_passed_on(gw) -> None:
    stub_error(gw, "ValidationError", 400, "1 validation error: Body too large")
    response = gw.handle(json_event({"text": "a"}))
    assert "Body too large" in error_of(response)["message"]


def test_missing_endpoint_is_503_not_a_client_fault(gw) -> None:
    stub_error(
        gw, "ValidationError", 400, "Endpoint MlServing-dev-digits-endpoint of account 1 not found."
    )
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 503
    assert error_of(response)["code"] == "EndpointUnavailable"
    assert response["headers"]["Retry-After"] == "5"


def test_model_error_is_502_with_the_models_message_sanitised_and_truncated(gw) -> None:
    original = "Traceback:\n  File inference.py\r\n\x1b[31mValueError: bad tensor\x00" + "x" * 2000
    stub_error(
        gw,
        "ModelError",
        424,
        "Received server error (500) from primary",
        OriginalStatusCode=500,
        OriginalMessage=original,
        LogStreamArn=LOG_STREAM,
    )
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "ModelError"
    assert "ValueError: bad tensor" in error["message"]
    assert not any(ch in error["message"] for ch in "\n\r\x1b\x00")
    assert len(error["message"]) < 600
    assert error["message"].endswith("…")
    assert "log-stream" not in response["body"]
    # ...but the operator finds the model's log stream in the function's log.
    assert any(r.get("model_log_stream") == LOG_STREAM for r in gw.log_records())


@pytest.mark.parametrize("original_status", [400, 415, 422])
def test_model_rejecting_the_input_stays_a_client_error(gw, original_status: int) -> None:
    stub_error(
        gw,
        "ModelError",
        424,
        OriginalStatusCode=original_status,
        OriginalMessage='{"error": "expected a 28x28 image"}',
    )
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == original_status
    error = error_of(response)
    assert error["code"] == "ModelRejectedInput"
    assert "expected a 28x28 image" in error["message"]


def test_the_container_missing_sagemakers_time_limit_is_a_504(gw) -> None:
    # SageMaker Runtime's answer when the container does not respond in time (no status code).
    stub_error(
        gw,
        "ModelError",
        424,
        'Received server error (0) from primary with message "Your invocation timed out while '
        "waiting for a response from container primary. Review the latency metrics for each "
        'container in Amazon CloudWatch, resolve the issue, and try again."',
        OriginalStatusCode=0,
        LogStreamArn=LOG_STREAM,
    )
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 504
    error = error_of(response)
    assert error["code"] == "GatewayTimeout"
    assert "time limit" in error["message"]


def test_the_containers_own_proxy_timeout_is_a_504(gw) -> None:
    # The Ray Serve container's adapter answers 504 when the model outlives
    # RAYSERVE_BACKEND_TIMEOUT; SageMaker passes it on as a ModelError.
    stub_error(
        gw,
        "ModelError",
        424,
        'Received server error (504) from primary with message "{"error": "Request timeout"}"',
        OriginalStatusCode=504,
        OriginalMessage='{"error": "Request timeout"}',
    )
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 504
    assert error_of(response)["code"] == "GatewayTimeout"


def test_model_error_without_original_message_uses_the_service_message(gw) -> None:
    stub_error(gw, "ModelError", 424, "Received server error (0) from primary")
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 502
    assert "Received server error" in error_of(response)["message"]


def _network_failure(make_gateway, exc: Exception, attempts: str) -> tuple[dict, list[int]]:
    """A gateway whose client fails at the network (botocore's before-send hook), no Stubber."""
    gw = make_gateway(INVOKE_MAX_ATTEMPTS=attempts)
    gw.stubber.deactivate()
    sends: list[int] = []

    def fail(**_: Any) -> None:
        sends.append(1)
        raise exc

    gw.client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail)
    return gw.handle(json_event({"text": "a"})), sends


def test_read_timeout_is_504_and_never_retried(make_gateway) -> None:
    exc = ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")
    response, sends = _network_failure(make_gateway, exc, attempts="3")
    assert response["statusCode"] == 504
    assert error_of(response)["code"] == "GatewayTimeout"
    assert "25 s" in error_of(response)["message"]
    # A retry would run past API Gateway's 29 s: exactly one attempt.
    assert len(sends) == 1


def test_connect_timeout_is_503_after_the_bounded_retries(make_gateway) -> None:
    exc = ConnectTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")
    response, sends = _network_failure(make_gateway, exc, attempts="2")
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "5"
    assert len(sends) == 2


def test_an_unexpected_exception_is_a_json_500_without_a_trace(make_gateway) -> None:
    response, _ = _network_failure(make_gateway, RuntimeError("secret internals"), attempts="1")
    assert response["statusCode"] == 500
    assert error_of(response) == {
        "code": "InternalError",
        "message": "the request could not be processed",
    }
    assert "secret internals" not in response["body"]
    assert "Traceback" not in json.dumps(response)


@pytest.mark.parametrize(
    "original",
    [
        # A plain Python traceback, as a model server prints it.
        'Traceback (most recent call last):\n  File "/opt/ml/model/code/inference.py", line 41,'
        " in predict_fn\n    logits = model(batch)\nRuntimeError: shape mismatch in layer fc",
        # TorchServe's JSON body, with the traceback appended to its message.
        '{"code": 500, "type": "InternalServerException", "message": "Prediction failed\\n'
        'Traceback (most recent call last):\\n  File \\"/opt/ml/model/code/inference.py\\", line'
        ' 41, in predict_fn\\n    logits = model(batch)\\nRuntimeError: shape mismatch in layer fc"}',
    ],
)
def test_model_tracebacks_never_reach_the_client(gw, original: str) -> None:
    stub_error(gw, "ModelError", 424, OriginalStatusCode=500, OriginalMessage=original)
    response = gw.handle(json_event({"text": "a"}))
    assert response["statusCode"] == 502
    message = error_of(response)["message"]
    assert "RuntimeError: shape mismatch in layer fc" in message
    for leak in ("Traceback", "inference.py", "line 41", "logits = model"):
        assert leak not in message, (leak, message)

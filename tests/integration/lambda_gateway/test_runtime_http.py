"""The unmodified handler over real HTTP to a local SageMaker Runtime stand-in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

from tests.support.runtime_standin import ENDPOINT, LAMBDA_SRC, Reply


def error_code(response: dict) -> str:
    return json.loads(response["body"])["error"]["code"]


def test_rest_v1_event_reaches_the_endpoint_signed_and_intact(load_handler, runtime, event) -> None:
    handler = load_handler()
    ev = event("apigw_rest_v1_predict_instances.json")
    runtime.reset(Reply(body=b'{"predictions": [[0.2, 0.8], [0.7, 0.3]]}'))
    response = handler.lambda_handler(ev, None)
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"]) == {"predictions": [[0.2, 0.8], [0.7, 0.3]]}
    (seen,) = runtime.seen
    assert seen.path == f"/endpoints/{ENDPOINT}/invocations"
    assert seen.body == ev["body"].encode()
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["x-amzn-sagemaker-inference-id"] == ev["requestContext"]["requestId"]
    # SigV4 with SageMaker's signing name: what real IAM would check.
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/sagemaker/aws4_request" in seen.headers["authorization"]


def test_rest_jpeg_event_is_sent_as_image_bytes(load_handler, runtime, event) -> None:
    handler = load_handler()
    ev = event("apigw_rest_v1_predict_jpeg.json")
    runtime.reset(Reply(body=b'{"predictions": [{"label": "7", "probability": 0.9}]}'))
    response = handler.lambda_handler(ev, None)
    assert response["statusCode"] == 200, response["body"]
    (seen,) = runtime.seen
    assert seen.body == base64.b64decode(ev["body"])
    assert seen.headers["content-type"] == "image/jpeg"


def test_read_timeout_is_504_after_a_single_attempt(load_handler, runtime, event) -> None:
    handler = load_handler(INVOKE_READ_TIMEOUT_S="0.5", INVOKE_MAX_ATTEMPTS="3")
    runtime.reset(Reply(delay_s=1.5), Reply(delay_s=1.5), Reply(delay_s=1.5))
    start = time.perf_counter()
    response = handler.lambda_handler(event("apigw_rest_v1_predict_texts.json"), None)
    elapsed_s = time.perf_counter() - start
    assert response["statusCode"] == 504
    assert error_code(response) == "GatewayTimeout"
    assert len(runtime.seen) == 1
    assert elapsed_s < 1.4  # gave up at the read timeout, did not wait for the slow model


def test_an_answer_stalling_mid_body_is_a_504(load_handler, runtime, event) -> None:
    handler = load_handler(INVOKE_READ_TIMEOUT_S="0.5")
    runtime.reset(Reply(body=b'{"predictions": ["pos", "neg"]}', body_delay_s=1.5))
    response = handler.lambda_handler(event("apigw_rest_v1_predict_texts.json"), None)
    assert response["statusCode"] == 504
    assert error_code(response) == "GatewayTimeout"


def test_a_dropped_connection_is_retried_then_a_502(load_handler, runtime, event) -> None:
    handler = load_handler(INVOKE_MAX_ATTEMPTS="2")
    runtime.reset(Reply(hang_up=True), Reply(hang_up=True))
    response = handler.lambda_handler(event("apigw_rest_v1_predict_texts.json"), None)
    assert response["statusCode"] == 502
    assert error_code(response) == "BadGateway"
    assert len(runtime.seen) == 2


def test_service_unavailable_is_retried_once_then_succeeds(load_handler, runtime, event) -> None:
    handler = load_handler(INVOKE_MAX_ATTEMPTS="2")
    runtime.reset(
        Reply(503, b'{"message": "busy"}', error_type="ServiceUnavailable"),
        Reply(body=b'{"predictions": ["pos", "neg"]}'),
    )
    response = handler.lambda_handler(event("apigw_rest_v1_predict_texts.json"), None)
    assert response["statusCode"] == 200, response["body"]
    assert len(runtime.seen) == 2


def test_model_error_on_the_wire_is_a_502_with_the_models_message(
    load_handler, runtime, event
) -> None:
    handler = load_handler()
    wire = {
        "ErrorCode": "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
        "Message": "Received server error (500) from primary with message ...",
        "OriginalMessage": "RuntimeError: shape mismatch: expected 3 channels",
        "OriginalStatusCode": 500,
    }
    runtime.reset(Reply(424, json.dumps(wire).encode(), error_type="ModelError"))
    response = handler.lambda_handler(event("apigw_rest_v1_predict_png.json"), None)
    assert response["statusCode"] == 502
    body = json.loads(response["body"])
    assert body["error"]["code"] == "ModelError"
    assert "shape mismatch: expected 3 channels" in body["error"]["message"]
    assert len(runtime.seen) == 1  # a model error is never retried


def test_throttling_on_the_wire_is_429_with_retry_after(load_handler, runtime, event) -> None:
    handler = load_handler(INVOKE_MAX_ATTEMPTS="1")
    runtime.reset(Reply(400, b'{"message": "Rate exceeded"}', error_type="ThrottlingException"))
    response = handler.lambda_handler(event("apigw_rest_v1_predict_image_json.json"), None)
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "1"


def test_health_never_calls_the_endpoint(load_handler, runtime, event) -> None:
    handler = load_handler()
    runtime.reset()
    assert handler.lambda_handler(event("apigw_rest_v1_health.json"), None)["statusCode"] == 200
    assert runtime.seen == []


def test_missing_endpoint_name_fails_the_init_with_a_clear_message() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ENDPOINT_NAME"}
    env["AWS_REGION"] = "us-east-1"
    result = subprocess.run(
        [sys.executable, "-c", "import prediction_gateway.handler"],
        cwd=LAMBDA_SRC,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "prediction_gateway.config.ConfigError: invalid Lambda configuration"
    )
    assert "ENDPOINT_NAME is required" in last_line

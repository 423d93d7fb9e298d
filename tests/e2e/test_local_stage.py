"""`python -m local_stage up` end to end over real HTTP: the path a user's request takes."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_S = 60


def _digits(data: Path, per_class: int) -> list[tuple[str, bytes]]:
    return [
        (cls.name, png.read_bytes())
        for cls in sorted((data / "test").iterdir())
        for png in sorted(cls.glob("*.png"))[:per_class]
    ]


def _wait_refused(port: int, timeout_s: float = 10.0) -> None:
    """Until nothing listens on ``port`` (a killed process's socket closes once it is reaped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        assert time.monotonic() < deadline, f"port {port} still accepts connections"
        time.sleep(0.02)


def test_up_printed_the_url_key_curl_line_and_answered_the_first_request(stage):
    log = stage.log()
    assert f"API URL:   {stage.url}" in log
    assert f"API key:   {stage.key}" in log
    assert "curl -sS -X POST" in log and f"x-api-key: {stage.key}" in log
    assert "-> 200 in" in log  # the first real request (a PNG of a 7)


def test_real_digit_images_are_classified(stage, digits_data, http):
    samples = _digits(digits_data, per_class=3)
    correct = 0
    for label, png in samples:
        resp = http.post(
            stage.url + "/predict",
            data=png,
            timeout=TIMEOUT_S,
            headers={"x-api-key": stage.key, "Content-Type": "image/png"},
        )
        assert resp.status_code == 200, resp.text
        correct += resp.json()["predictions"][0]["label"] == label
    assert correct / len(samples) >= 0.8, f"{correct}/{len(samples)} digits right"


def test_a_batch_of_images_answers_in_order(stage, digits_data, http):
    samples = _digits(digits_data, per_class=1)[:4]
    body = {"instances": [{"b64": base64.b64encode(png).decode()} for _, png in samples]}

    resp = http.post(
        stage.url + "/predict", json=body, timeout=TIMEOUT_S, headers={"x-api-key": stage.key}
    )

    assert resp.status_code == 200, resp.text
    labels = [p["label"] for p in resp.json()["predictions"]]
    assert len(labels) == 4
    single = [
        http.post(
            stage.url + "/predict",
            data=png,
            timeout=TIMEOUT_S,
            headers={"x-api-key": stage.key, "Content-Type": "image/png"},
        ).json()["predictions"][0]["label"]
        for _, png in samples
    ]
    assert labels == single


def test_a_numpy_answer_reaches_the_client_as_bytes(stage, digits_data, http):
    """Accept: application/x-npy is one of the API's binary media types: API Gateway decodes the
    Lambda's base64 body, so the client gets the .npy file, not base64 text."""
    import io

    import numpy as np

    (_, png), *_ = _digits(digits_data, per_class=1)
    headers = {"x-api-key": stage.key, "Content-Type": "image/png"}
    resp = http.post(
        stage.url + "/predict",
        data=png,
        timeout=TIMEOUT_S,
        headers={**headers, "Accept": "application/x-npy"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/x-npy"
    scores = np.load(io.BytesIO(resp.content))
    as_json = http.post(stage.url + "/predict", data=png, timeout=TIMEOUT_S, headers=headers)
    probabilities = as_json.json()["predictions"][0]["probabilities"]  # {label: p}
    expected = [probabilities[label] for label in sorted(probabilities, key=int)]
    assert scores.shape[-1] == len(expected)
    assert np.allclose(scores.reshape(-1), expected, atol=1e-4)


def test_client_errors(stage, http):
    key = {"x-api-key": stage.key}
    bad_json = http.post(
        stage.url + "/predict",
        data="{not json",
        timeout=TIMEOUT_S,
        headers={**key, "Content-Type": "application/json"},
    )
    wrong_type = http.post(
        stage.url + "/predict",
        data="<p>hello</p>",
        timeout=TIMEOUT_S,
        headers={**key, "Content-Type": "text/html"},
    )
    no_key = http.post(
        stage.url + "/predict",
        data=b"\x89PNG",
        timeout=TIMEOUT_S,
        headers={"Content-Type": "image/png"},
    )
    wrong_key = http.get(stage.url + "/health", headers={"x-api-key": "guess"}, timeout=TIMEOUT_S)
    unknown = http.get(stage.url + "/nope", headers=key, timeout=TIMEOUT_S)

    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"]
    assert wrong_type.status_code == 415
    # API Gateway's own errors come in the stack's GatewayResponse shape, like the Lambda's.
    assert no_key.status_code == 403 and no_key.json()["error"]["code"] == "Forbidden"
    assert "x-api-key" in no_key.json()["error"]["message"]
    assert wrong_key.status_code == 403
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"
    assert "POST /predict" in unknown.json()["error"]["message"]


def test_api_gateway_validates_json_bodies_against_the_request_model(stage, http):
    # A well-formed JSON body of no accepted shape never reaches the Lambda: API Gateway's
    # request validator answers 400 (BAD_REQUEST_BODY), in the same error shape.
    resp = http.post(
        stage.url + "/predict",
        json={"pixels": [1, 2, 3]},
        headers={"x-api-key": stage.key},
        timeout=TIMEOUT_S,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "BadRequest"
    assert "instances" in resp.json()["error"]["message"]
    assert resp.json()["requestId"]


def test_a_model_error_reaches_the_client_as_a_clear_error(stage, http):
    # Valid JSON of the right shape, but not an image: the model's input_fn rejects it.
    body = {"instances": [{"b64": base64.b64encode(b"not a png").decode()}]}
    resp = http.post(
        stage.url + "/predict", json=body, headers={"x-api-key": stage.key}, timeout=TIMEOUT_S
    )

    assert resp.status_code in (400, 422, 502), resp.text
    error = resp.json()["error"]
    assert error["code"] in ("ModelRejectedInput", "ModelError")
    assert error["message"]
    # One request id from the client to the endpoint: API Gateway's x-amzn-RequestId is what the
    # Lambda answers and logs, and what the runtime API logs beside its own id (the InferenceId).
    request_id = resp.headers["x-amzn-RequestId"]
    assert request_id == resp.headers["X-Request-Id"] == resp.json()["requestId"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hops = [line for line in stage.log().splitlines() if request_id in line]
        if any("runtime-api" in line for line in hops) and any(
            "api-front" in line for line in hops
        ):
            break
        time.sleep(0.2)
    assert any("runtime-api" in line and "ModelError" in line for line in hops), hops
    assert any("api-front" in line and re.search(r'"status": ?4', line) for line in hops), hops


def test_boto3_reaches_the_endpoint_through_the_runtime_api(stage, digits_data, monkeypatch):
    state = stage.state
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", state["runtime_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", config=Config(retries={"max_attempts": 1})
    )
    label, png = _digits(digits_data, per_class=1)[3]

    resp = client.invoke_endpoint(
        EndpointName=state["endpoint_name"], Body=png, ContentType="image/png"
    )

    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads(resp["Body"].read())["predictions"][0]["label"] == label
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(EndpointName="other", Body=png, ContentType="image/png")


def test_crashed_instances_give_503_and_are_restarted(stage, digits_data, http):
    label, png = _digits(digits_data, per_class=1)[5]
    headers = {"x-api-key": stage.key, "Content-Type": "image/png"}
    models = [p for p in stage.state["processes"] if p.get("role") == "model-server"]
    assert len({p["instance"] for p in models}) == 2  # the variant's InitialInstanceCount

    for p in models:
        os.kill(p["pid"], signal.SIGKILL)
    for p in models:
        _wait_refused(p["port"])
    # The supervisor restarts them at once, but a Ray Serve container opens its port only once the
    # application is RUNNING again (seconds); the Lambda's one standard-mode retry comes within
    # about a second, so the client sees the 503 that an endpoint with no live instance gives.
    down = http.post(stage.url + "/predict", data=png, headers=headers, timeout=TIMEOUT_S)

    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "ServiceUnavailable"
    deadline = time.monotonic() + 120
    while True:
        resp = http.post(stage.url + "/predict", data=png, headers=headers, timeout=TIMEOUT_S)
        if resp.status_code == 200:
            break
        assert time.monotonic() < deadline, f"not back after restart: {resp.text}"
        time.sleep(0.5)
    assert resp.json()["predictions"][0]["label"] == label
    restarted = [p for p in stage.state["processes"] if p.get("role") == "model-server"]
    assert all(p["restarts"] >= 1 for p in restarted)
    assert {p["pid"] for p in restarted}.isdisjoint({p["pid"] for p in models})

"""The local runtime API with an inference component that scales to zero, through boto3.

A stub instance stands in for the model; the supervisor's part (stopping and starting the
instance's processes) is covered end to end in tests/e2e/test_scale_to_zero.py.
"""

from __future__ import annotations

import time

import boto3
import pytest
import requests
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stage.runtime_api import NO_CAPACITY_MESSAGE

from .test_runtime_api import runtime_api, threaded_app

COMPONENT = "mlserving-dev-digits--m5-large-ic"
IDLE_S = 1.5


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"predictions": [[1.0]]})


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with threaded_app({"/invocations": _answer}) as instance:
        config = {
            "endpoints": {
                "ep": {
                    "variants": [
                        {
                            "name": "AllTraffic",
                            "instances": [instance],
                            "inference_component": COMPONENT,
                            "idle_s": IDLE_S,
                        }
                    ]
                }
            }
        }
        with runtime_api(config, tmp_path_factory.mktemp("runtime")) as url:
            yield url


@pytest.fixture
def client(runtime, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=runtime,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def invoke(client, **extra):
    return client.invoke_endpoint(
        EndpointName="ep", Body=b'{"instances": [[1]]}', ContentType="application/json", **extra
    )


def copies(runtime: str) -> int:
    (component,) = requests.get(f"{runtime}/_local/capacity", timeout=5).json()["components"]
    return component["copies"]


def test_an_endpoint_with_components_needs_the_component_name(client):
    with pytest.raises(ClientError) as caught:
        invoke(client)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "InferenceComponentName" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        invoke(client, InferenceComponentName="other")
    assert "Inference Component other not found" in caught.value.response["Error"]["Message"]


def test_idle_component_scales_to_zero_and_the_next_request_brings_it_back(client, runtime):
    # Given a warm component (a fresh deploy starts with one copy)
    assert invoke(client, InferenceComponentName=COMPONENT)["Body"].read()
    assert copies(runtime) == 1
    # When it stays idle past its idle period
    time.sleep(IDLE_S + 1.0)
    assert copies(runtime) == 0
    # Then the next request fails exactly as SageMaker's does, and starts a copy
    with pytest.raises(ClientError) as caught:
        invoke(client, InferenceComponentName=COMPONENT)
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == NO_CAPACITY_MESSAGE
    assert copies(runtime) == 1
    # And once its instance answers /ping, requests are served again
    deadline = time.monotonic() + 10
    while True:
        try:
            body = invoke(client, InferenceComponentName=COMPONENT)["Body"].read()
            break
        except ClientError as exc:
            assert exc.response["Error"]["Message"] == NO_CAPACITY_MESSAGE
            assert time.monotonic() < deadline, "the component never came back"
            time.sleep(0.1)
    assert b"predictions" in body

"""The local SageMaker Runtime API, driven by the unmodified boto3 client.

Each error must come out as the botocore exception class a client catches against AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from container_contract.ports import free_port
from container_contract.ray_serve import RayContainer
from local_stage.model_server.server import LOCAL_ERROR_HEADER

from .conftest import REPO, stop_process, wait_http_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance(torch_model_dir, tmp_path_factory) -> Iterator[RayContainer]:
    """The test artifact in real Ray Serve behind the container's adapter."""
    log_path = tmp_path_factory.mktemp("ray") / "ray.log"
    with RayContainer(torch_model_dir, log_path=log_path) as container:
        yield container


@contextlib.contextmanager
def bounded_instance(limit: int = 2, work_s: float = 0.7) -> Iterator[str]:
    """An instance that refuses work past ``limit`` requests in flight with the local model
    server's overload answer (503 + ``X-Local-Stage-Error: overloaded``, what its TF Serving
    emulation sends when its queue is full)."""
    in_flight = 0

    async def invocations(request: web.Request) -> web.Response:
        nonlocal in_flight
        await request.read()
        if in_flight >= limit:
            return web.json_response(
                {"message": "queue full"}, status=503, headers={LOCAL_ERROR_HEADER: "overloaded"}
            )
        in_flight += 1
        try:
            await asyncio.sleep(work_s)
        finally:
            in_flight -= 1
        return web.json_response({"predictions": [[1.0]]})

    with threaded_app({"/invocations": invocations}) as url:
        yield url


@contextlib.contextmanager
def threaded_app(posts: dict) -> Iterator[str]:
    app = web.Application()
    for path, handler in posts.items():
        app.router.add_post(path, handler)
    app.router.add_get("/ping", lambda _: web.Response(text=""))
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture(scope="module")
def runtime(ray_instance, tmp_path_factory):
    normal = ray_instance
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a crashed instance
    with bounded_instance() as busy:
        config = {
            "region": "us-east-1",
            "account": "123456789012",
            "endpoints": {
                "digits": {"variants": [{"name": "AllTraffic", "instances": [normal.url]}]},
                "busy": {"variants": [{"name": "AllTraffic", "instances": [busy]}]},
                "down": {"variants": [{"name": "AllTraffic", "instances": [dead]}]},
                "slow": {
                    "container_timeout_s": 1,
                    "variants": [{"name": "AllTraffic", "instances": [normal.url]}],
                },
            },
        }
        with runtime_api(config, tmp_path_factory.mktemp("runtime")) as url:
            yield url


@contextlib.contextmanager
def runtime_api(config: dict, base: Path) -> Iterator[str]:
    """``python -m local_stage runtime-api`` on a free port with this config; yields its URL."""
    (base / "config.json").write_text(json.dumps(config))
    port = free_port()
    log_path = base / "runtime.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stage",
            "runtime-api",
            "--config",
            str(base / "config.json"),
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http_port(port, proc, log_path, 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def client(runtime, monkeypatch):
    # Exactly how the Lambda (and any user) reaches it: the standard env var, dummy credentials.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_invoke_endpoint_returns_the_body_content_type_and_variant(client):
    resp = client.invoke_endpoint(
        EndpointName="digits",
        Body=b'{"instances": [[1,2,3,4]]}',
        ContentType="application/json",
        Accept="application/json",
    )

    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert len(json.loads(resp["Body"].read())["predictions"]) == 1


def test_unknown_endpoint_is_a_validation_error(client):
    with pytest.raises(client.exceptions.ValidationError) as err:
        client.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert "Endpoint nope of account 123456789012 not found" in str(err.value)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_container_error_is_a_model_error_with_the_original_status_and_message(client):
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(
            EndpointName="digits", Body=b'{"fail": "bad pixels"}', ContentType="application/json"
        )
    response = err.value.response
    assert response["OriginalStatusCode"] == 500
    assert "the model refused this input: bad pixels" in response["OriginalMessage"]
    assert response["LogStreamArn"].startswith(
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/digits"
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_no_reachable_instance_is_service_unavailable(client):
    with pytest.raises(client.exceptions.ServiceUnavailable):
        client.invoke_endpoint(EndpointName="down", Body=b"{}", ContentType="application/json")


def test_a_full_queue_is_throttling_and_a_slow_model_a_timeout_model_error(client):
    def invoke(_: int) -> str:
        try:
            client.invoke_endpoint(EndpointName="busy", Body=b"{}", ContentType="application/json")
            return "ok"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(invoke, range(10)))

    assert "ok" in codes
    assert "ThrottlingException" in codes
    assert set(codes) <= {"ok", "ThrottlingException"}
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(
            EndpointName="slow", Body=b'{"sleep_s": 2}', ContentType="application/json"
        )
    assert "timed out" in str(err.value)


def test_the_aws_cli_style_env_is_all_a_client_needs(runtime):
    # A fresh process with only the env var and dummy credentials (no code changes).
    code = (
        "import boto3;c=boto3.client('sagemaker-runtime', region_name='us-east-1');"
        "print(c.invoke_endpoint(EndpointName='digits', Body=b'{\"instances\": [[0,0,0,1]]}',"
        "ContentType='application/json')['InvokedProductionVariant'])"
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "AllTraffic"


@contextlib.contextmanager
def flaky_instance() -> Iterator[str]:
    """A container stand-in on a thread: the body ``drop`` loses its connection mid-request
    (what a worker that crashes while holding a request looks like); anything else answers."""

    async def invocations(request: web.Request) -> web.StreamResponse:
        if await request.read() == b"drop":
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError
        return web.json_response({"ok": True})

    with threaded_app({"/invocations": invocations}) as url:
        yield url


def test_a_connection_lost_mid_request_fails_that_request_only(tmp_path):
    """The instance stays in rotation (its other workers may be serving): the very next request
    succeeds, with no wait for the health probe."""
    with flaky_instance() as instance:
        config = {
            "region": "us-east-1",
            "account": "123456789012",
            "endpoints": {"ep": {"variants": [{"name": "AllTraffic", "instances": [instance]}]}},
        }
        with runtime_api(config, tmp_path) as url:
            invoke = f"{url}/endpoints/ep/invocations"
            headers = {"Content-Type": "application/json"}
            lost = requests.post(invoke, data=b"drop", headers=headers, timeout=10)
            after = [
                requests.post(invoke, data=b"{}", headers=headers, timeout=10).status_code
                for _ in range(3)
            ]

    assert lost.status_code == 503
    assert lost.headers["x-amzn-ErrorType"].startswith("ServiceUnavailable")
    assert after == [200, 200, 200]

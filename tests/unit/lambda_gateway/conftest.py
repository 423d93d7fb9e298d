"""Fixtures for the Lambda gateway's unit tests: the real gateway with a Stubber-backed client.

The Stubber sits at the AWS boundary (botocore's sagemaker-runtime service model validates every
stubbed request and response); everything of ours runs unmodified.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator

import botocore.session
import pytest
from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics
from botocore.stub import Stubber
from prediction_gateway.client import create_runtime_client
from prediction_gateway.config import Config
from prediction_gateway.gateway import Gateway

from tests.support.lambda_gateway import BASE_ENV, GatewayUnderTest


@pytest.fixture(autouse=True)
def _offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials or config files reach the client; nothing can call AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # An unroutable stand-in: an unstubbed call can only fail, never reach AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def botocore_session() -> botocore.session.Session:
    """One session for all tests: its loader caches the service model and endpoint rules."""
    return botocore.session.get_session()


@pytest.fixture
def make_gateway(
    botocore_session: botocore.session.Session,
) -> Iterator[Callable[..., GatewayUnderTest]]:
    """Build a gateway from an environment (BASE_ENV plus overrides) with a stubbed client."""
    stubbers: list[Stubber] = []

    def build(**env_overrides: str) -> GatewayUnderTest:
        config = Config.from_env({**BASE_ENV, **env_overrides})
        client = create_runtime_client(config, botocore_session)
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        log = io.StringIO()
        # A unique service name gives each test its own logging.Logger (and so its own stream).
        logger = Logger(service=f"gateway-test-{uuid.uuid4().hex}", stream=log)
        metrics = Metrics(namespace=config.metrics_namespace, service=config.service_name)
        return GatewayUnderTest(Gateway(config, client, logger, metrics), stubber, client, log)

    yield build
    for stubber in stubbers:
        stubber.deactivate()


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayUnderTest]) -> GatewayUnderTest:
    return make_gateway()

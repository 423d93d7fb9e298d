"""A SageMaker Runtime stand-in on 127.0.0.1 (free port) and the unmodified Lambda handler module
loaded against it through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: the real botocore client path
(serialisation, SigV4 signing, HTTP, retries, error parsing) with only AWS itself replaced."""

from __future__ import annotations

import importlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest

from tests.support.runtime_standin import (
    ENDPOINT,
    EVENTS,
    RuntimeStandIn,
    make_request_handler,
)


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeStandIn]:
    state = RuntimeStandIn(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_request_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


_counter = itertools.count()


@pytest.fixture
def load_handler(
    runtime: RuntimeStandIn, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ModuleType]:
    """Run the handler module's init afresh (it reads the environment) against the stand-in."""

    def load(**env: str) -> ModuleType:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "CORS_ALLOW_ORIGIN"):
            monkeypatch.delenv(name, raising=False)
        base = {
            "ENDPOINT_NAME": ENDPOINT,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url,
            "POWERTOOLS_SERVICE_NAME": f"gateway-it-{next(_counter)}",
            "POWERTOOLS_METRICS_NAMESPACE": "MlServingTest",
        }
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)
        # Re-running the handler module is Lambda's init phase: it reads the environment set above.
        return importlib.reload(importlib.import_module("prediction_gateway.handler"))

    return load


@pytest.fixture
def event() -> Callable[[str], dict[str, Any]]:
    return lambda name: json.loads((EVENTS / name).read_text())

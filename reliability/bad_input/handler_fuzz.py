"""The unmodified Lambda handler, imported in-process, fed hypothesis events; its SageMaker
client talks to the stage's runtime API and the real model.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from reliability.bad_input.error_body import error_validator
from reliability.bad_input.events import event_strategy


@contextlib.contextmanager
def lambda_handler(endpoint_name: str, runtime_url: str) -> Iterator[Any]:
    """The unmodified lambda_src handler, imported as Lambda's init would (its environment set),
    talking to the stage's runtime API; the process's environment and modules are restored."""
    saved_env = dict(os.environ)
    env = {
        "ENDPOINT_NAME": endpoint_name,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
        "POWERTOOLS_METRICS_NAMESPACE": "MlServingReliability",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "CRITICAL",  # the fuzz sends thousands of requests; logs would drown the run
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    os.environ.update(env)
    try:
        # Re-running the handler module is Lambda's init phase: it reads the environment above.
        module = importlib.reload(importlib.import_module("prediction_gateway.handler"))
        yield module.lambda_handler
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


class _Context:
    function_name = "gateway"
    aws_request_id = "fuzz-0000"
    memory_limit_in_mb = "512"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:gateway:live"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class FuzzResult:
    events: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    bad_bodies: list[str] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, event: Any, response: Any, validator: jsonschema.Draft4Validator) -> None:
        """Count one answer: a valid proxy response, its status, and an error body's shape."""
        problem = _response_problem(response)
        if problem:
            self.malformed.append(f"{problem} on {_describe(event)}")
            return
        status = response["statusCode"]
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(f"{status} {response['body'][:200]} on {_describe(event)}")
        if status >= 400:
            try:
                doc = json.loads(response["body"])
            except ValueError:
                doc = None
            errors = list(validator.iter_errors(doc))
            if errors or response["headers"].get("Content-Type") != "application/json":
                self.bad_bodies.append(f"{response['body'][:200]!r} on {_describe(event)}")
            elif doc["requestId"] != response["headers"].get("X-Request-Id"):
                self.bad_bodies.append(f"requestId differs from X-Request-Id on {_describe(event)}")
            else:
                self.codes[doc["error"]["code"]] += 1


def _describe(event: Any) -> str:
    return json.dumps(event, default=repr)[:300]


def _response_problem(response: Any) -> str | None:
    """Why API Gateway could not use this as a proxy response (it would answer 502)."""
    if not isinstance(response, dict):
        return f"not a dict: {type(response).__name__}"
    if not isinstance(response.get("statusCode"), int):
        return f"statusCode {response.get('statusCode')!r}"
    headers = response.get("headers")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return f"headers {headers!r:.200}"
    if not isinstance(response.get("body"), str) or not isinstance(
        response.get("isBase64Encoded"), bool
    ):
        return "body or isBase64Encoded of the wrong type"
    try:
        json.dumps(response)
    except (TypeError, ValueError) as err:
        return f"not JSON-serialisable: {err}"
    return None


def run_handler_fuzz(endpoint_name: str, runtime_url: str, n_events: int) -> FuzzResult:
    from hypothesis import HealthCheck, Phase, given, settings

    result = FuzzResult()
    validator = error_validator()
    start = time.monotonic()
    with lambda_handler(endpoint_name, runtime_url) as handler:

        @settings(
            max_examples=n_events,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],  # count, do not shrink: a failure is recorded, not raised
            suppress_health_check=list(HealthCheck),
        )
        @given(event=event_strategy())
        def fuzz(event: Any) -> None:
            result.events += 1
            try:
                response = handler(copy.deepcopy(event), _Context())
            except BaseException as err:  # noqa: BLE001 (a crash is what this counts)
                result.crashes.append(f"{err!r} on {_describe(event)}")
                return
            result.record(event, response, validator)

        fuzz()
    result.seconds = time.monotonic() - start
    return result

"""Helpers shared by the Lambda gateway tests: events, a stubbed gateway, a real PNG."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

REPO = Path(__file__).resolve().parents[2]
LAMBDA_SRC = REPO / "lambda_src"
EVENTS = REPO / "tests" / "events"
ENDPOINT = "MlServing-dev-digits-endpoint"
BASE_ENV = {
    "ENDPOINT_NAME": ENDPOINT,
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "MlServingTest",
}
# A real 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c636000000002000148afa4710000000049454e44ae426082"
)


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def make_event(
    body: str | None = None,
    content_type: str | None = "application/json",
    *,
    method: str = "POST",
    path: str = "/predict",
    is_base64: bool = False,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A real REST API (v1) proxy event sample with the request parts replaced."""
    ev = load_event("apigw_rest_v1_predict_instances.json")
    ev["httpMethod"] = method
    ev["resource"] = ev["path"] = path
    ct_name = "Content-Type"
    hdrs = {k: v for k, v in ev["headers"].items() if k.lower() != "content-type"}
    if content_type is not None:
        hdrs[ct_name] = content_type
    hdrs.update(headers or {})
    ev["headers"] = hdrs
    ev.pop("multiValueHeaders", None)
    ev["body"] = body
    ev["isBase64Encoded"] = is_base64
    return ev


def json_event(doc: Any, **kwargs: Any) -> dict[str, Any]:
    return make_event(json.dumps(doc), **kwargs)


def invoke_response(
    body: bytes | str = b'{"predictions": [1]}', content_type: str = "application/json"
) -> dict[str, Any]:
    data = body.encode() if isinstance(body, str) else body
    return {
        "Body": StreamingBody(io.BytesIO(data), len(data)),
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
    }


@dataclass
class GatewayUnderTest:
    gateway: Any
    stubber: Stubber
    client: Any
    log: io.StringIO

    def handle(self, event: Any) -> dict[str, Any]:
        return self.gateway.handle(event, None)

    def expect_invoke(
        self,
        body: bytes | Any,
        content_type: str = "application/json",
        *,
        accept: str | None = "application/json",
        inference_id: Any = ANY,
        response_body: bytes | str = b'{"predictions": [1]}',
        response_type: str = "application/json",
    ) -> None:
        """Queue one successful InvokeEndpoint whose request must match exactly."""
        expected: dict[str, Any] = {
            "EndpointName": self.gateway.config.endpoint_name,
            "Body": body,
            "ContentType": content_type,
        }
        if inference_id is not None:
            expected["InferenceId"] = inference_id
        if accept is not None:
            expected["Accept"] = accept
        self.stubber.add_response(
            "invoke_endpoint", invoke_response(response_body, response_type), expected
        )

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    """The documented error shape, checked; returns {"code", "message"}."""
    assert response["headers"]["Content-Type"] == "application/json"
    doc = json.loads(response["body"])
    assert set(doc) == {"error", "requestId"}
    assert set(doc["error"]) == {"code", "message"}
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert doc["requestId"] == response["headers"]["X-Request-Id"]
    return doc["error"]

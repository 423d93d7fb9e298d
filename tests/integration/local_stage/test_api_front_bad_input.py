"""The local API front answers malformed requests as API Gateway does (found by the reliability
suite's bad-input scenario): API Gateway's own JSON errors, never the web server's 500 or its
plain-text 413."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from local_stage.api_front import MAX_REQUEST_BYTES, ApiFront
from local_stage.template import ApiSpec, FunctionSpec, GatewayResponseSpec, RouteSpec

SCHEMA = {
    "type": "object",
    "required": ["instances"],
    "properties": {"instances": {"type": "array"}},
}
CALLS: list[Any] = []


class _Function:
    """Stands in for the Lambda service behind the front: records what it was sent."""

    async def invoke(self, event: dict[str, Any], timeout_s: float) -> tuple[Any, str]:
        CALLS.append(event)
        answer = {"statusCode": 200, "headers": {}, "body": "{}", "isBase64Encoded": False}
        return answer, "lambda-request-id"

    async def close(self) -> None:
        pass


def _front() -> ApiFront:
    fn = FunctionSpec(
        "Fn", "prediction_gateway.handler.lambda_handler", "python3.13", Path("."), {}, 29, 512
    )
    route = RouteSpec(
        "POST", "/predict", False, "lambda", function=fn, body_schemas={"application/json": SCHEMA}
    )
    api = ApiSpec(
        "Api",
        "dev",
        (),
        (route,),
        None,
        False,
        gateway_responses={
            "BAD_REQUEST_BODY": GatewayResponseSpec(
                400,
                '{"error": {"code": "BadRequest", "message": $context.error.messageString}}',
                {},
            ),
            "REQUEST_TOO_LARGE": GatewayResponseSpec(
                413, '{"error": {"code": "PayloadTooLarge", "message": "too large"}}', {}
            ),
        },
    )
    return ApiFront(api, {"Fn": _Function()}, api_key="k", region="us-east-1", account="0" * 12)


async def _post(body: bytes) -> tuple[int, str, Any]:
    front = _front()
    async with TestClient(TestServer(front.app())) as client:
        resp = await client.post(
            "/dev/predict", data=body, headers={"Content-Type": "application/json"}
        )
        return resp.status, resp.content_type, await resp.json(content_type=None)


def test_a_body_nested_deeper_than_the_parser_follows_is_an_invalid_body_not_a_500():
    CALLS.clear()
    deep = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    status, content_type, doc = asyncio.run(_post(deep))

    assert (status, content_type) == (400, "application/json")
    assert doc["error"]["code"] == "BadRequest"
    assert CALLS == []  # refused before the function


def test_a_body_over_10_mb_gets_the_request_too_large_gateway_response():
    CALLS.clear()

    status, content_type, doc = asyncio.run(_post(b"[" + b" " * MAX_REQUEST_BYTES + b"]"))

    assert (status, content_type) == (413, "application/json")
    assert doc == {"error": {"code": "PayloadTooLarge", "message": "too large"}}
    assert CALLS == []


def test_a_valid_body_still_reaches_the_function():
    CALLS.clear()

    status, _, _ = asyncio.run(_post(b'{"instances": [1]}'))

    assert status == 200 and len(CALLS) == 1

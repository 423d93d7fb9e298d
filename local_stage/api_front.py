"""API Gateway (REST API, Lambda proxy integration) in front of the stack's Lambda handler.

HTTP requests under ``/<stage>/...`` become API Gateway REST proxy events (version 1.0) for the
handler the template names, imported from its code asset in ``cdk.out`` with the function's
environment. As API Gateway does, before the function runs:

- an unknown resource or method → 403 ``{"message":"Missing Authentication Token"}``;
- ``ApiKeyRequired`` without a valid ``x-api-key`` → 403 ``{"message":"Forbidden"}``;
- past the stage's method throttle or the usage plan's (token buckets: rate per second, burst
  capacity) → 429 ``{"message":"Too Many Requests"}``;
- a body whose ``Content-Type`` matches ``BinaryMediaTypes`` is base64-encoded with
  ``isBase64Encoded: true``; a base64 response is decoded when ``Accept`` or its content type is
  a binary media type;
- the function raising, or answering something that is not a proxy response → 502
  ``{"message": "Internal server error"}``; no answer within the integration timeout → 504
  ``{"message": "Endpoint request timed out"}``;
- a body over 10 MB → 413 ``{"message": "Request Too Long"}``;
- a body that fails the method's request model (a RequestValidator with ValidateRequestBody, for
  the body's content type), is not JSON or nests too deep to parse → 400
  ``{"message": "Invalid request body"}``.

Where the template declares a GatewayResponse for that kind of error (or DEFAULT_4XX/5XX), its
status, headers and application/json template are used instead, as API Gateway does.

Each request runs in one of the function's execution environments
(``local_stage.lambda_environments``: one process each, one request at a time, as on Lambda).
The request id is API Gateway's: the client's ``x-amzn-RequestId`` is the event's
``requestContext.requestId``, which the function answers as ``X-Request-Id`` and passes to the
endpoint as its ``InferenceId``, so one id joins the logs of every hop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import Any, Protocol

import jsonschema
from aiohttp import web

from local_stage.lambda_environments import FunctionError
from local_stage.template import ApiSpec, GatewayResponseSpec, RouteSpec, Throttle

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway REST payload limit


class Function(Protocol):
    """A Lambda function as the API front calls it (``EnvironmentPool`` is the real one)."""

    async def invoke(self, event: dict[str, Any], timeout_s: float) -> tuple[Any, str]: ...

    async def close(self) -> None: ...


def _request_id() -> str:
    """An API Gateway request id: the client's ``x-amzn-RequestId``."""
    return str(uuid.uuid4())


def _message(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"message": message},
        status=status,
        headers={"x-amzn-ErrorType": _ERROR_TYPES.get(status, "Error"), **headers},
    )


_ERROR_TYPES = {
    403: "ForbiddenException",
    413: "RequestEntityTooLargeException",
    429: "TooManyRequestsException",
    502: "BadGatewayException",
    504: "IntegrationTimeoutException",
}


class TokenBucket:
    """API Gateway's throttle: ``burst`` tokens of capacity, refilled at ``rate_rps`` per second."""

    def __init__(self, throttle: Throttle) -> None:
        self.rate = throttle.rate_rps
        self.capacity = max(throttle.burst, 1)
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _Match:
    route: RouteSpec
    path_parameters: dict[str, str] | None


def match_route(routes: tuple[RouteSpec, ...], method: str, path: str) -> _Match | None:
    """API Gateway's resource matching: literal segments first, then {param}, then {proxy+}."""
    segments = [s for s in path.split("/") if s]
    best: tuple[int, _Match] | None = None
    for route in routes:
        if route.http_method not in (method, "ANY"):
            continue
        pattern = [s for s in route.resource_path.split("/") if s]
        params: dict[str, str] = {}
        score = 0
        ok = True
        for i, part in enumerate(pattern):
            if part.startswith("{") and part.endswith("+}"):
                if i >= len(segments):
                    ok = False
                    break
                params[part[1:-2]] = "/".join(segments[i:])
                score += 1
                segments_used = len(segments)
                break
            if i >= len(segments):
                ok = False
                break
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[i]
                score += 10
            elif part == segments[i]:
                score += 100
            else:
                ok = False
                break
        else:
            segments_used = len(pattern)
        if not ok or segments_used != len(segments):
            continue
        score += 1 if route.http_method == method else 0
        candidate = _Match(route, params or None)
        if best is None or score > best[0]:
            best = (score, candidate)
    return best[1] if best else None


def is_binary(content_type: str | None, binary_types: tuple[str, ...]) -> bool:
    if not content_type or not binary_types:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch(media, t.lower()) for t in binary_types)


class ApiFront:
    def __init__(
        self,
        api: ApiSpec,
        functions: Mapping[str, Function],
        *,
        api_key: str,
        region: str,
        account: str,
    ) -> None:
        self.api = api
        self.functions = functions  # function logical id → its execution environments
        self.api_key = api_key
        self.region = region
        self.account = account
        self.route_buckets = {
            id(r): TokenBucket(r.throttle) for r in api.routes if r.throttle is not None
        }
        self.plan_bucket = TokenBucket(api.usage_plan_throttle) if api.usage_plan_throttle else None
        self.api_id = "local" + uuid.uuid4().hex[:6]
        self.in_flight = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES + 1)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def error(
        self, response_type: str, status: int, message: str, request_id: str | None = None
    ) -> web.Response:
        """API Gateway's own error answer, shaped by the template's GatewayResponse if any."""
        request_id = request_id or _request_id()
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec: GatewayResponseSpec | None = self.api.gateway_responses.get(
            response_type
        ) or self.api.gateway_responses.get(family)
        if spec is None:
            return _message(status, message, **{"x-amzn-RequestId": request_id})
        body = spec.template or json.dumps({"message": message})
        body = body.replace("$context.error.messageString", json.dumps(message))
        body = body.replace("$context.error.message", message)
        body = body.replace("$context.requestId", request_id)
        return web.Response(
            status=spec.status or status,
            body=body.encode(),
            content_type="application/json",
            headers={
                "x-amzn-ErrorType": _ERROR_TYPES.get(status, "Error"),
                "x-amzn-RequestId": request_id,
                **spec.headers,
            },
        )

    def invalid_body(self, route: RouteSpec, request: web.Request, body: bytes) -> bool:
        """Whether the body fails the route's request model for its content type."""
        media = (request.headers.get("Content-Type") or "application/json").split(";")[0]
        schema = route.body_schemas.get(media.strip().lower())
        if schema is None:
            return False  # no model for this content type: API Gateway passes it through
        try:
            document = json.loads(body or b"null")
            return not jsonschema.Draft4Validator(schema).is_valid(document)
        except (ValueError, RecursionError):
            # Not JSON, or nested deeper than a parser follows: API Gateway's validator refuses
            # it as an invalid body (a 400), it does not fail.
            return True

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.Response:
        stage_prefix = f"/{self.api.stage_name}"
        path = request.path
        if path != stage_prefix and not path.startswith(stage_prefix + "/"):
            return self.error("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        resource_path = path[len(stage_prefix) :] or "/"
        match = match_route(self.api.routes, request.method, resource_path)
        if match is None:
            return self.error("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        route = match.route
        if route.api_key_required and request.headers.get("x-api-key") != self.api_key:
            return self.error("INVALID_API_KEY", 403, "Forbidden")
        bucket = self.route_buckets.get(id(route))
        if bucket is not None and not bucket.take():
            return self.error("THROTTLED", 429, "Too Many Requests")
        if route.api_key_required and self.plan_bucket is not None and not self.plan_bucket.take():
            return self.error("THROTTLED", 429, "Too Many Requests")
        if route.integration == "mock":
            return web.Response(status=route.mock_status, headers=route.mock_headers)
        body: bytes | None
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # aiohttp's own limit (client_max_size) struck first
            body = None
        if body is None or len(body) > MAX_REQUEST_BYTES:
            return self.error("REQUEST_TOO_LARGE", 413, "Request Too Long")
        if route.body_schemas and self.invalid_body(route, request, body):
            return self.error("BAD_REQUEST_BODY", 400, "Invalid request body")
        request_id = _request_id()
        event = self.event(request, route, match.path_parameters, resource_path, body, request_id)
        assert route.function is not None
        fn = route.function
        function = self.functions[fn.logical_id]
        try:
            result, lambda_request_id = await function.invoke(
                event, min(route.integration_timeout_s, fn.timeout_s)
            )
        except TimeoutError:
            log.warning("%s: the function did not answer in time", request_id)
            return self.error("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", request_id)
        except FunctionError as exc:
            log.error(
                "%s: the function failed (Lambda reports a failed invocation): %s", request_id, exc
            )
            return self.error("DEFAULT_5XX", 502, "Internal server error", request_id)
        log.debug("%s: Lambda request %s", request_id, lambda_request_id)
        return self.to_http(result, request, request_id)

    def event(
        self,
        request: web.Request,
        route: RouteSpec,
        path_parameters: dict[str, str] | None,
        resource_path: str,
        body: bytes,
        request_id: str,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            headers[key] = value
            multi_headers.setdefault(key, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query[key] = value
            multi_query.setdefault(key, []).append(value)
        binary = is_binary(request.headers.get("Content-Type"), self.api.binary_media_types)
        if not body:
            event_body = None
        elif binary:
            event_body = base64.b64encode(body).decode("ascii")
        else:
            event_body = body.decode("utf-8", errors="replace")
        now = datetime.now(UTC)
        peer = request.remote or "127.0.0.1"
        return {
            "resource": route.resource_path,
            "path": resource_path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.resource_path,
                "httpMethod": request.method,
                "extendedRequestId": uuid.uuid4().hex[:16],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": request.path,
                "accountId": self.account,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "stage": self.api.stage_name,
                "domainPrefix": "localhost",
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": peer,
                    "userAgent": request.headers.get("User-Agent"),
                    "apiKey": request.headers.get("x-api-key") if route.api_key_required else None,
                    "apiKeyId": "local-key" if route.api_key_required else None,
                },
                "domainName": request.host,
                "apiId": self.api_id,
            },
            "body": event_body,
            "isBase64Encoded": bool(binary and body),
        }

    def to_http(self, result: Any, request: web.Request, request_id: str) -> web.Response:
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error(
                "%s: Execution failed due to configuration error: Malformed Lambda proxy response "
                "(got %s)",
                request_id,
                type(result).__name__,
            )
            return self.error("DEFAULT_5XX", 502, "Internal server error")
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            log.error(
                "%s: Malformed Lambda proxy response: statusCode %r",
                request_id,
                result.get("statusCode"),
            )
            return self.error("DEFAULT_5XX", 502, "Internal server error")
        headers: dict[str, str] = {}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ",".join(str(v) for v in values)
        for key, value in (result.get("headers") or {}).items():
            headers[key] = str(value)
        body = result.get("body")
        payload = b"" if body is None else str(body).encode("utf-8")
        if result.get("isBase64Encoded") and body:
            accept = request.headers.get("Accept", "").split(",", 1)[0]
            content_type = headers.get("Content-Type") or headers.get("content-type")
            binary = self.api.binary_media_types
            if is_binary(accept, binary) or is_binary(content_type, binary):
                try:
                    payload = base64.b64decode(body)
                except ValueError:
                    log.error("%s: isBase64Encoded but the body is not base64", request_id)
                    return self.error("DEFAULT_5XX", 502, "Internal server error")
        headers["x-amzn-RequestId"] = request_id
        headers.pop("Content-Length", None)
        headers.pop("content-length", None)
        return web.Response(status=status, body=payload, headers=headers)

    async def drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for function in self.functions.values():
            await function.close()

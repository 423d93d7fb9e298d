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

The handler runs in a thread pool (one thread per concurrent "execution environment"), so the
event loop keeps serving while it waits on the endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import Any

import jsonschema
from aiohttp import web

from local_stage.template import ApiSpec, FunctionSpec, GatewayResponseSpec, RouteSpec, Throttle

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway REST payload limit


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


class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(self, fn: FunctionSpec, function_name: str, region: str, account: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account}:function:{function_name}:live"
        )
        self.memory_limit_in_mb = str(fn.memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + fn.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_environment(
    fn: FunctionSpec,
    *,
    function_name: str,
    region: str,
    runtime_url: str,
    overrides: dict[str, str],
) -> dict[str, str]:
    """The function's environment as Lambda would set it, pointed at the local runtime API.

    Credentials are dummies on purpose: the local handler must never reach a real AWS account.
    """
    env = dict(fn.environment)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
            # No X-Ray daemon runs locally.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.update(overrides)
    return env


def load_handler(fn: FunctionSpec, env: dict[str, str]) -> Any:
    """Import the handler from its code asset with its environment set (Lambda's init phase)."""
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        os.environ.pop(key, None)
    os.environ.update(env)
    # As the Lambda runtime does: the function's code asset is the handler's import root (the
    # asset is the Lambda's deployment package, not a package of this project).
    sys.path.insert(0, str(fn.code_dir))
    module_name, _, func_name = fn.handler.rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, func_name, None)
    if not callable(handler):
        raise AttributeError(f"{fn.code_dir}/{module_name}.py has no function {func_name}")
    return handler


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
        handlers: dict[str, Any],
        *,
        api_key: str,
        region: str,
        account: str,
        concurrency: int = 32,
    ) -> None:
        self.api = api
        self.handlers = handlers  # function logical id → handler callable
        self.api_key = api_key
        self.region = region
        self.account = account
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lambda")
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

    def error(self, response_type: str, status: int, message: str) -> web.Response:
        """API Gateway's own error answer, shaped by the template's GatewayResponse if any."""
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec: GatewayResponseSpec | None = self.api.gateway_responses.get(
            response_type
        ) or self.api.gateway_responses.get(family)
        if spec is None:
            return _message(status, message)
        request_id = str(uuid.uuid4())
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
        event = self.event(request, route, match.path_parameters, resource_path, body)
        assert route.function is not None
        fn = route.function
        context = LambdaContext(
            fn, f"{self.api_id}-{fn.logical_id}"[:64], self.region, self.account
        )
        handler = self.handlers[fn.logical_id]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(route.integration_timeout_s, fn.timeout_s)):
                result = await loop.run_in_executor(self.pool, handler, event, context)
        except TimeoutError:
            log.warning("%s: the function did not answer in time", context.aws_request_id)
            return self.error("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")
        except Exception:
            log.exception(
                "%s: the function raised (Lambda reports it as a failed invocation)",
                context.aws_request_id,
            )
            return self.error("DEFAULT_5XX", 502, "Internal server error")
        return self.to_http(result, request, context.aws_request_id)

    def event(
        self,
        request: web.Request,
        route: RouteSpec,
        path_parameters: dict[str, str] | None,
        resource_path: str,
        body: bytes,
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
                "requestId": str(uuid.uuid4()),
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
        self.pool.shutdown(wait=False, cancel_futures=True)

"""API Gateway REST API (v1) Lambda proxy events as requests, and the id a client can quote.

The stack deploys a REST API; HTTP API (v2) events are refused as not a REST proxy event rather
than half-understood.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

# The API's routes and the methods each accepts (OPTIONS is answered on every route).
ROUTES: dict[str, tuple[str, ...]] = {"/predict": ("POST",), "/health": ("GET",)}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    is_base64: bool


def _route_path(event: Mapping[str, Any]) -> str:
    resource = event.get("resource")
    # An explicit resource (/predict) is exact; a proxy resource ({proxy+}) needs the path.
    path = resource if isinstance(resource, str) and "{" not in resource else event.get("path")
    if not isinstance(path, str) or not path:
        return "/"
    return path.rstrip("/") or "/"


def parse_event(event: Any) -> Request:
    """An API Gateway REST (v1) proxy event as a Request."""
    if not isinstance(event, Mapping) or event.get("version") == "2.0":
        raise ApiError(
            400, "InvalidEvent", "expected an API Gateway REST API proxy event (a JSON object)"
        )
    method = event.get("httpMethod")
    raw_headers = event.get("headers")
    headers: dict[str, str] = {}
    if isinstance(raw_headers, Mapping):
        for name, value in raw_headers.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        raise ApiError(400, "InvalidEvent", "the event's body must be a string or null")
    return Request(
        method=method.upper() if isinstance(method, str) else "",
        path=_route_path(event),
        headers=headers,
        body=body,
        is_base64=event.get("isBase64Encoded") is True,
    )


def request_id_of(event: Any, context: Any) -> str:
    """API Gateway's request id (the client's ``x-amzn-RequestId``), else Lambda's, else new."""
    if isinstance(event, Mapping):
        ctx = event.get("requestContext")
        if isinstance(ctx, Mapping) and isinstance(ctx.get("requestId"), str) and ctx["requestId"]:
            return str(ctx["requestId"])
    aws_request_id = getattr(context, "aws_request_id", None)
    return aws_request_id if isinstance(aws_request_id, str) else str(uuid.uuid4())

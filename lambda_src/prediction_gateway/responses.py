"""API Gateway proxy responses: the headers every answer carries, errors, and the model's answer.

Binary answers are base64-encoded for API Gateway, which decodes them for clients whose ``Accept``
is one of the API's binary media types.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from .config import JSON_CONTENT_TYPE
from .errors import ApiError

# Lambda's synchronous response limit; the base64 of a binary answer counts against it.
LAMBDA_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
_TEXTUAL_SUFFIXES = ("json", "+xml", "/xml", "csv", "jsonlines")


class Responses:
    """Builds the proxy responses of one function: same base headers on every answer."""

    def __init__(self, cors_allow_origin: str) -> None:
        self.cors_allow_origin = cors_allow_origin
        self._base_headers = {
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if cors_allow_origin:
            self._base_headers["Access-Control-Allow-Origin"] = cors_allow_origin
            self._base_headers["Access-Control-Expose-Headers"] = "Retry-After,X-Request-Id"
            if cors_allow_origin != "*":
                self._base_headers["Vary"] = "Origin"

    def response(
        self,
        status: int,
        body: str,
        content_type: str,
        request_id: str,
        extra_headers: Mapping[str, str] | None = None,
        is_base64: bool = False,
    ) -> dict[str, Any]:
        headers = {**self._base_headers, "Content-Type": content_type, "X-Request-Id": request_id}
        if extra_headers:
            headers.update(extra_headers)
        return {
            "statusCode": status,
            "headers": headers,
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def error(self, error: ApiError, request_id: str) -> dict[str, Any]:
        body = json.dumps(
            {"error": {"code": error.code, "message": error.message}, "requestId": request_id}
        )
        return self.response(error.status, body, JSON_CONTENT_TYPE, request_id, error.headers)

    def preflight(self, allowed: tuple[str, ...], request_id: str) -> dict[str, Any]:
        headers = {"Allow": ", ".join((*allowed, "OPTIONS"))}
        if self.cors_allow_origin:
            headers.update(
                {
                    "Access-Control-Allow-Methods": ", ".join((*allowed, "OPTIONS")),
                    "Access-Control-Allow-Headers": "Content-Type,Accept,Authorization,X-Api-Key",
                    "Access-Control-Max-Age": "600",
                }
            )
        return self.response(204, "", "text/plain", request_id, headers)


def _is_textual(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type.endswith(_TEXTUAL_SUFFIXES)


def as_response_body(data: bytes, content_type: str) -> tuple[str, bool]:
    """(body, isBase64Encoded): text answers as they are, anything else base64 for API Gateway."""
    if _is_textual(content_type):
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), True


def check_prediction_count(data: bytes, content_type: str, expected: int) -> None:
    """The answer must map one-to-one, in order, onto the inputs it was sent."""
    if not content_type.split(";", 1)[0].strip().lower().endswith("json"):
        return
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ApiError(502, "BadModelResponse", "the model answered with malformed JSON") from err
    predictions = doc.get("predictions") if isinstance(doc, dict) else None
    if isinstance(predictions, list) and len(predictions) != expected:
        raise ApiError(
            502,
            "BadModelResponse",
            f"the model returned {len(predictions)} predictions for {expected} inputs",
        )

"""``ApiError`` and SageMaker Runtime's error contract as the API's statuses.

Every failure reaches the client as ``{"error": {"code", "message"}, "requestId"}``; the table of
codes is in ``lambda_src/README.md``. The model's own error text is passed on without its
traceback, cut and cleaned of control characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

# How long a client should wait before retrying, by cause (seconds).
RETRY_AFTER_THROTTLED_S = 1
RETRY_AFTER_UNAVAILABLE_S = 5
# The model's own error text is passed on, cut to this many characters.
MAX_MODEL_MESSAGE_CHARS = 512
# Statuses a model container answers for a bad *input*: passed on as client errors, not 502.
MODEL_CLIENT_ERROR_STATUSES = frozenset({400, 406, 413, 415, 422})

# SageMaker's answer to a request for an inference component that has no copy (scaled to zero, or
# scaling out): ValidationError "Inference Component has no capacity to process this request.
# ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by
# invoking UpdateInferenceComponentRuntimeConfig API." (AWS ML blog, "Unlock cost savings with the
# new scale down to zero feature in SageMaker Inference", 2024).
_NO_CAPACITY_RE = re.compile(r"inference component has no capacity", re.IGNORECASE)
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]+")


class ApiError(Exception):
    """A failure the client gets as `{"error": {"code", "message"}, "requestId"}`."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


_TRACEBACK_MARK = "Traceback (most recent call last):"


def _model_message(raw: Any) -> str:
    """The model's own words from an error body: no JSON wrapper, no Python traceback.

    The PyTorch toolkit (TorchServe) answers `{"code", "type", "message"}` and appends the
    traceback to the message; file paths and code lines are for the model's log, not clients.
    """
    text = str(raw or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = parsed["message"]
    head, mark, tail = text.partition(_TRACEBACK_MARK)
    if mark:
        # Keep the exception line ("ValueError: ..."), the last unindented line of the trace.
        lines = [line for line in tail.splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if not line[:1].isspace()), "")
        text = f"{head.strip()} {last.strip()}".strip()
    return sanitise(text)


def sanitise(text: Any) -> str:
    cleaned = _CONTROL_CHARS_RE.sub(" ", str(text or "")).strip()
    if len(cleaned) > MAX_MODEL_MESSAGE_CHARS:
        cleaned = cleaned[: MAX_MODEL_MESSAGE_CHARS - 1] + "…"
    return cleaned


def map_client_error(err: ClientError, no_capacity_retry_after_s: int) -> ApiError:
    """SageMaker Runtime's error contract as our statuses (README.md has the table)."""
    error = err.response.get("Error", {})
    code = error.get("Code", "")
    message = sanitise(error.get("Message"))
    if code == "ValidationError" and _NO_CAPACITY_RE.search(message):
        # Scaled to zero: this very request is what brings a copy back (its failure is counted
        # in NoCapacityInvocationFailures, whose alarm adds a copy).
        return ApiError(
            503,
            "ModelStarting",
            f"the model is starting (it was scaled to zero while idle); retry after "
            f"{no_capacity_retry_after_s} seconds",
            {"Retry-After": str(no_capacity_retry_after_s)},
        )
    if code == "ValidationError":
        # The endpoint is gone or being replaced: our fault or a deploy in flight, not the client's.
        if "not found" in message.lower() and "endpoint" in message.lower():
            return ApiError(
                503,
                "EndpointUnavailable",
                "the model endpoint is not available right now; retry later",
                {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
            )
        return ApiError(400, "InvalidInput", f"the endpoint rejected the request: {message}")
    if code == "ModelError":
        original_status = err.response.get("OriginalStatusCode")
        original = _model_message(err.response.get("OriginalMessage")) or message
        if original_status in MODEL_CLIENT_ERROR_STATUSES:
            return ApiError(original_status, "ModelRejectedInput", original)
        if "invocation timed out" in message.lower() or original_status == 504:
            # The container missed SageMaker's own time limit (60 s unless configured), or its
            # own proxy gave up on the model (the Ray Serve container's RAYSERVE_BACKEND_TIMEOUT
            # answers 504): the model was too slow, not broken, so a timeout, as our read
            # timeout is.
            return ApiError(
                504,
                "GatewayTimeout",
                "the model did not answer within the endpoint's time limit; send smaller "
                "requests or scale the endpoint up",
            )
        return ApiError(502, "ModelError", f"the model failed on this request: {original}")
    if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
        return ApiError(
            429,
            "Throttled",
            "too many requests for the model endpoint; retry after a short wait",
            {"Retry-After": str(RETRY_AFTER_THROTTLED_S)},
        )
    if code == "ModelNotReadyException":
        return ApiError(
            429,
            "ModelNotReady",
            "the model is still loading; retry shortly",
            {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        )
    if code in ("ServiceUnavailable", "InternalFailure", "InternalDependencyException"):
        return ApiError(
            503,
            "ServiceUnavailable",
            "the model endpoint is temporarily unavailable; retry later",
            {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        )
    # Anything else (AccessDenied, an unknown code) is a deployment fault: no details leak out.
    return ApiError(500, "InternalError", "the request could not be processed")

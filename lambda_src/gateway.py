"""The prediction API's request logic: event in, one InvokeEndpoint call, response out.

Model-agnostic on purpose: this module knows the request *shapes* users send (see README.md next
to it) and the SageMaker Runtime error contract, never a model. Model-specific pre- and
post-processing ships inside the model artifact (`code/inference.py`).

Only the standard library, botocore (already loaded by the client) and Powertools' metrics (from
AWS's public layer) are imported here: the cold start is measured (bench/lambda_cold_init.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)

# SageMaker InvokeEndpoint accepts at most 6 MiB per request (and per response).
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# API Gateway's integration timeout; our whole invocation must finish inside it.
API_GATEWAY_TIMEOUT_S = 29.0
# Lambda's synchronous response limit; the base64 of a binary answer counts against it.
LAMBDA_MAX_RESPONSE_BYTES = 6 * 1024 * 1024

ROUTES: dict[str, tuple[str, ...]] = {"/predict": ("POST",), "/health": ("GET",)}
JSON_CONTENT_TYPE = "application/json"
# Raw image uploads and the signature their first bytes must carry.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
# One text for a text model, UTF-8: sent on as {"instances": ["<text>"]}, like {"text": ...}.
TEXT_CONTENT_TYPE = "text/plain"
ACCEPTED_CONTENT_TYPES = (JSON_CONTENT_TYPE, *IMAGE_SIGNATURES, TEXT_CONTENT_TYPE)
INPUT_KEYS = ("instances", "inputs", "image", "images", "text", "texts")
EXPECTED_SHAPES = (
    'a JSON object with exactly one of: {"instances": [...]}, {"inputs": ...}, '
    '{"image": "<base64>"}, {"images": ["<base64>", ...]}, {"text": "..."}, '
    '{"texts": ["...", ...]}'
)

# How long a client should wait before retrying, by cause (seconds).
RETRY_AFTER_THROTTLED_S = 1
RETRY_AFTER_UNAVAILABLE_S = 5
# A scale-to-zero component bringing a copy back: AWS measures minutes (README "Scale to zero").
RETRY_AFTER_NO_CAPACITY_S = 60
# SageMaker's answer to a request for an inference component that has no copy (scaled to zero, or
# scaling out): ValidationError "Inference Component has no capacity to process this request.
# ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by
# invoking UpdateInferenceComponentRuntimeConfig API." (AWS ML blog, "Unlock cost savings with the
# new scale down to zero feature in SageMaker Inference", 2024).
_NO_CAPACITY_RE = re.compile(r"inference component has no capacity", re.IGNORECASE)
# The model's own error text is passed on, cut to this many characters.
MAX_MODEL_MESSAGE_CHARS = 512
# Statuses a model container answers for a bad *input*: passed on as client errors, not 502.
MODEL_CLIENT_ERROR_STATUSES = frozenset({400, 406, 413, 415, 422})

# Validators below are used with fullmatch: `$` would also accept a trailing newline.
_ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_ORIGIN_RE = re.compile(r"(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)")
_METRICS_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_./#:-]{1,255}")
# InvokeEndpoint's InferenceId: 1-64 printable characters, not starting with a space.
_INFERENCE_ID_RE = re.compile(r"[!-~][ -~]{0,63}")
_HEADER_VALUE_RE = re.compile(r"[ -~]{1,1024}")
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]+")
_DATA_URL_RE = re.compile(r"data:[a-zA-Z0-9.+/-]*;base64,")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TEXTUAL_SUFFIXES = ("json", "+xml", "/xml", "csv", "jsonlines")


class ConfigError(ValueError):
    """The function's environment is wrong; raised at init so the deploy fails loudly."""


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


@dataclass(frozen=True)
class Config:
    """Validated function configuration (see README.md for each variable)."""

    endpoint_name: str
    region: str
    # Set when the model is an inference component on the endpoint (capacity_mode scale_to_zero).
    inference_component_name: str = ""
    no_capacity_retry_after_s: int = RETRY_AFTER_NO_CAPACITY_S
    endpoint_content_type: str = JSON_CONTENT_TYPE
    cors_allow_origin: str = ""
    max_payload_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 25.0
    max_attempts: int = 2
    service_name: str = "prediction-api"
    metrics_namespace: str = "MlServing"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read and validate the environment; every problem is named in one ConfigError."""
        problems: list[str] = []

        def number(name: str, default: float, kind: type, low: float, high: float) -> Any:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                noun = "an integer" if kind is int else "a number"
                problems.append(f"{name}={raw!r} is not {noun}")
                return default
            if not low <= value <= high:
                problems.append(f"{name}={raw} is outside {low:g}..{high:g}")
            return value

        endpoint_name = env.get("ENDPOINT_NAME", "").strip()
        if not endpoint_name:
            problems.append(
                "ENDPOINT_NAME is required: set it to the SageMaker endpoint to invoke "
                "(the stack passes the endpoint's name)"
            )
        elif not _ENDPOINT_NAME_RE.fullmatch(endpoint_name):
            problems.append(
                f"ENDPOINT_NAME={endpoint_name!r} is not a SageMaker endpoint name "
                "(1-63 letters, digits and hyphens)"
            )
        component = env.get("INFERENCE_COMPONENT_NAME", "").strip()
        if component and not _ENDPOINT_NAME_RE.fullmatch(component):
            problems.append(
                f"INFERENCE_COMPONENT_NAME={component!r} is not an inference component name "
                "(1-63 letters, digits and hyphens)"
            )
        no_capacity_s = number("NO_CAPACITY_RETRY_AFTER_S", RETRY_AFTER_NO_CAPACITY_S, int, 1, 3600)
        region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
        if not region:
            problems.append("AWS_REGION is not set (Lambda sets it; set it for local runs)")
        content_type = env.get("ENDPOINT_CONTENT_TYPE", "").strip().lower() or JSON_CONTENT_TYPE
        if not _MEDIA_TYPE_RE.fullmatch(content_type):
            problems.append(
                f"ENDPOINT_CONTENT_TYPE={content_type!r} is not a media type like application/json"
            )
        cors = env.get("CORS_ALLOW_ORIGIN", "").strip()
        if cors and not _ORIGIN_RE.fullmatch(cors):
            problems.append(
                f"CORS_ALLOW_ORIGIN={cors!r} must be empty (CORS off), '*' or one origin "
                "like https://app.example.com"
            )
        max_payload = number(
            "MAX_PAYLOAD_BYTES", SAGEMAKER_MAX_PAYLOAD_BYTES, int, 1, SAGEMAKER_MAX_PAYLOAD_BYTES
        )
        connect_s = number("INVOKE_CONNECT_TIMEOUT_S", 2.0, float, 0.1, API_GATEWAY_TIMEOUT_S)
        read_s = number("INVOKE_READ_TIMEOUT_S", 25.0, float, 0.1, API_GATEWAY_TIMEOUT_S)
        if connect_s + read_s >= API_GATEWAY_TIMEOUT_S:
            problems.append(
                f"INVOKE_CONNECT_TIMEOUT_S + INVOKE_READ_TIMEOUT_S = {connect_s + read_s:g} s must "
                f"stay under API Gateway's {API_GATEWAY_TIMEOUT_S:g} s integration timeout"
            )
        attempts = number("INVOKE_MAX_ATTEMPTS", 2, int, 1, 5)
        namespace = env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or "MlServing"
        if not _METRICS_NAMESPACE_RE.fullmatch(namespace):
            problems.append(f"POWERTOOLS_METRICS_NAMESPACE={namespace!r} is not a valid namespace")
        level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
        if level not in _LOG_LEVELS:
            problems.append(f"LOG_LEVEL={level!r} must be one of {', '.join(_LOG_LEVELS)}")
        if problems:
            raise ConfigError("invalid Lambda configuration: " + "; ".join(problems))
        return cls(
            endpoint_name=endpoint_name,
            region=region,
            inference_component_name=component,
            no_capacity_retry_after_s=no_capacity_s,
            endpoint_content_type=content_type,
            cors_allow_origin=cors,
            max_payload_bytes=max_payload,
            connect_timeout_s=connect_s,
            read_timeout_s=read_s,
            max_attempts=attempts,
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "").strip() or "prediction-api",
            metrics_namespace=namespace,
            log_level=level,
        )


def create_runtime_client(config: Config, session: Any = None) -> Any:
    """The sagemaker-runtime client: explicit timeouts, standard-mode retries, created once.

    botocore's session is used directly (it is what boto3.client wraps) because `import boto3`
    adds ~10% to the cold start for nothing this function uses. Pass `session` to reuse one
    session's loaded service data (tests, benchmarks).
    """
    import botocore.session
    from botocore.config import Config as BotoConfig

    session = session or botocore.session.get_session()
    client = session.create_client(
        "sagemaker-runtime",
        region_name=config.region,
        config=BotoConfig(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            # Standard mode retries throttling, 500/502/503/504 and connection errors only,
            # with jittered backoff; ModelError and ValidationError are never retried.
            retries={"mode": "standard", "total_max_attempts": config.max_attempts},
            tcp_keepalive=True,
        ),
    )
    client.meta.events.register_first(
        "needs-retry.sagemaker-runtime.InvokeEndpoint", _never_retry_read_timeouts
    )
    return client


def _never_retry_read_timeouts(caught_exception: Exception | None = None, **_: Any) -> None:
    """Stop standard mode from retrying a read timeout.

    A second attempt after a read timeout would run past API Gateway's 29 s and the client would
    get API Gateway's bare timeout instead of our 504. Raising here ends the retry loop with the
    original exception (botocore's public event hook; no veto value works on every version).
    """
    if isinstance(caught_exception, ReadTimeoutError):
        raise caught_exception


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    is_base64: bool


@dataclass(frozen=True)
class Invocation:
    """What goes to InvokeEndpoint, plus how many inputs the answer must map back to."""

    body: bytes
    content_type: str
    input_count: int | None
    shape: str


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _route_path(event: Mapping[str, Any]) -> str:
    path: Any
    if event.get("version") == "2.0":
        route_key = event.get("routeKey")
        # "POST /predict": the route without the stage prefix that rawPath carries.
        if isinstance(route_key, str) and " " in route_key and "{" not in route_key:
            path = route_key.split(" ", 1)[1]
        else:
            path = event.get("rawPath")
            stage = _mapping(event.get("requestContext")).get("stage")
            if (
                isinstance(path, str)
                and isinstance(stage, str)
                and stage != "$default"
                and path.startswith(f"/{stage}/")
            ):
                path = path[len(stage) + 1 :]
    else:
        resource = event.get("resource")
        # An explicit resource (/predict) is exact; a proxy resource ({proxy+}) needs the path.
        path = resource if isinstance(resource, str) and "{" not in resource else event.get("path")
    if not isinstance(path, str) or not path:
        return "/"
    return path.rstrip("/") or "/"


def parse_event(event: Any) -> Request:
    """An API Gateway REST (v1) or HTTP API (v2) proxy event as a Request."""
    if not isinstance(event, Mapping):
        raise ApiError(400, "InvalidEvent", "expected an API Gateway proxy event (a JSON object)")
    if event.get("version") == "2.0":
        method = _mapping(_mapping(event.get("requestContext")).get("http")).get("method")
    else:
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
    """API Gateway's request id (what the client can quote), else Lambda's, else a fresh one."""
    if isinstance(event, Mapping):
        ctx = event.get("requestContext")
        if isinstance(ctx, Mapping) and isinstance(ctx.get("requestId"), str) and ctx["requestId"]:
            return str(ctx["requestId"])
    aws_request_id = getattr(context, "aws_request_id", None)
    return aws_request_id if isinstance(aws_request_id, str) else str(uuid.uuid4())


def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
    if not header:
        return "", {}
    main, *params = header.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"').lower()
    return main.strip().lower(), parsed


def _body_bytes(request: Request, max_payload_bytes: int) -> bytes:
    body = request.body or ""
    # Cheap upper bounds first, so an oversized body is refused before it is decoded.
    decoded_estimate = len(body) * 3 // 4 if request.is_base64 else len(body)
    if decoded_estimate > max_payload_bytes + 2:
        raise _too_large(decoded_estimate, max_payload_bytes)
    if request.is_base64:
        try:
            # strict_mode (3.11+): the C decoder rejects junk itself; b64decode(validate=True)
            # adds a regex pass over the whole body.
            data = binascii.a2b_base64(body, strict_mode=True)
        except (binascii.Error, ValueError) as err:
            raise ApiError(
                400, "InvalidBody", "the body is flagged base64-encoded but is not valid base64"
            ) from err
    else:
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ApiError(400, "InvalidBody", "the body is not valid UTF-8 text") from err
    if len(data) > max_payload_bytes:
        raise _too_large(len(data), max_payload_bytes)
    return data


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "PayloadTooLarge",
        f"the request is about {size} bytes; the endpoint accepts at most {limit} bytes. "
        "Send fewer inputs per request or smaller images.",
    )


def _reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_base64(value: str) -> bool:
    """Standard (RFC 4648) base64, checked without decoding: a translate pass is ~6x cheaper."""
    if not value.isascii() or len(value) % 4:
        return False
    unpadded = value[:-2] + value[-2:].rstrip("=")
    return not unpadded.encode("ascii").translate(None, _BASE64_ALPHABET)


def _checked_base64(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(400, "InvalidInput", f"{where} must be a non-empty base64 string")
    if value.startswith("data:"):
        prefix = _DATA_URL_RE.match(value[:256])
        if prefix:
            value = value[prefix.end() :]
    if not _is_base64(value):
        # Tolerate line-wrapped base64 (what `base64` prints by default), nothing else.
        value = "".join(value.split())
        if not value or not _is_base64(value):
            raise ApiError(
                400,
                "InvalidInput",
                f"{where} is not valid standard base64 (RFC 4648, e.g. `base64 -w0 img.png`)",
            )
    return value


def _non_empty_list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc[key]
    if not isinstance(value, list) or not value:
        raise ApiError(400, "InvalidInput", f'"{key}" must be a non-empty JSON array')
    return value


def _json_invocation(data: bytes, config: Config) -> Invocation:
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_json_constant)
    except UnicodeDecodeError as err:
        raise ApiError(400, "InvalidJson", "the JSON body is not UTF-8 encoded") from err
    except (ValueError, RecursionError) as err:
        raise ApiError(
            400, "InvalidJson", f"the body is not valid JSON ({err}); expected {EXPECTED_SHAPES}"
        ) from err
    if not isinstance(doc, dict):
        raise ApiError(400, "InvalidInput", f"expected {EXPECTED_SHAPES}")
    present = [key for key in INPUT_KEYS if key in doc]
    if len(present) != 1:
        found = f"found {', '.join(present)}" if present else "found none"
        raise ApiError(400, "InvalidInput", f"expected {EXPECTED_SHAPES}; {found}")
    key = present[0]
    if key == "instances":
        # SageMaker's own shapes go through byte for byte, extra keys (signature_name) included.
        count: int | None = len(_non_empty_list(doc, key))
        return Invocation(data, config.endpoint_content_type, count, key)
    if key == "inputs":
        if doc[key] in (None, "", [], {}):
            raise ApiError(400, "InvalidInput", '"inputs" must not be empty')
        return Invocation(data, config.endpoint_content_type, None, key)
    extra = sorted(set(doc) - {key})
    if extra:
        raise ApiError(
            400, "InvalidInput", f'unexpected keys {extra} beside "{key}"; send "{key}" alone'
        )
    instances: list[Any]
    if key in ("image", "images"):
        if key == "image":
            images = [_checked_base64(doc[key], '"image"')]
        else:
            items = _non_empty_list(doc, key)
            images = [_checked_base64(item, f'"images"[{i}]') for i, item in enumerate(items)]
        # Checked base64 needs no JSON escaping: splice it in rather than json.dumps megabytes.
        body = (
            b'{"instances":['
            + b",".join(b'{"b64":"' + image.encode("ascii") + b'"}' for image in images)
            + b"]}"
        )
        if len(body) > config.max_payload_bytes:
            raise _too_large(len(body), config.max_payload_bytes)
        return Invocation(body, config.endpoint_content_type, len(images), key)
    if key == "text":
        if not isinstance(doc[key], str) or not doc[key]:
            raise ApiError(400, "InvalidInput", '"text" must be a non-empty string')
        instances = [doc[key]]
    else:
        instances = _non_empty_list(doc, key)
        for i, item in enumerate(instances):
            if not isinstance(item, str) or not item:
                raise ApiError(400, "InvalidInput", f'"texts"[{i}] must be a non-empty string')
    body = json.dumps({"instances": instances}, separators=(",", ":")).encode("utf-8")
    if len(body) > config.max_payload_bytes:
        raise _too_large(len(body), config.max_payload_bytes)
    return Invocation(body, config.endpoint_content_type, len(instances), key)


def _text_invocation(data: bytes, config: Config) -> Invocation:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, "InvalidInput", "the text/plain body is not UTF-8 encoded") from err
    if not text.strip():
        raise ApiError(400, "InvalidInput", "the text/plain body is blank; send the text")
    body = json.dumps({"instances": [text]}, separators=(",", ":")).encode("utf-8")
    if len(body) > config.max_payload_bytes:
        raise _too_large(len(body), config.max_payload_bytes)
    return Invocation(body, config.endpoint_content_type, 1, "text")


def build_invocation(request: Request, config: Config) -> Invocation:
    """Validate a POST /predict request and turn it into the endpoint's payload."""
    media_type, params = _media_type(request.headers.get("content-type"))
    if media_type not in ACCEPTED_CONTENT_TYPES:
        got = f"Content-Type {media_type[:100]!r}" if media_type else "no Content-Type"
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"got {got}; send {', '.join(ACCEPTED_CONTENT_TYPES)}",
        )
    charset = params.get("charset")
    if charset and charset not in ("utf-8", "utf8"):
        raise ApiError(415, "UnsupportedMediaType", f"charset {charset!r}: send UTF-8")
    if not request.body:
        raise ApiError(400, "EmptyBody", f"the body is empty; expected {EXPECTED_SHAPES}")
    data = _body_bytes(request, config.max_payload_bytes)
    if media_type == JSON_CONTENT_TYPE:
        return _json_invocation(data, config)
    if media_type == TEXT_CONTENT_TYPE:
        return _text_invocation(data, config)
    if not data.startswith(IMAGE_SIGNATURES[media_type]):
        raise ApiError(
            400,
            "InvalidImage",
            f"the body is not a {media_type.split('/')[1].upper()} image; send the file's bytes "
            f"(curl --data-binary @file) with the matching Content-Type",
        )
    return Invocation(data, media_type, 1, "raw-image")


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
    return _sanitise(text)


def _sanitise(text: Any) -> str:
    cleaned = _CONTROL_CHARS_RE.sub(" ", str(text or "")).strip()
    if len(cleaned) > MAX_MODEL_MESSAGE_CHARS:
        cleaned = cleaned[: MAX_MODEL_MESSAGE_CHARS - 1] + "…"
    return cleaned


def map_client_error(
    err: ClientError, no_capacity_retry_after_s: int = RETRY_AFTER_NO_CAPACITY_S
) -> ApiError:
    """SageMaker Runtime's error contract as our statuses (README.md has the table)."""
    error = err.response.get("Error", {})
    code = error.get("Code", "")
    message = _sanitise(error.get("Message"))
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


def _is_textual(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type.endswith(_TEXTUAL_SUFFIXES)


def _as_response_body(data: bytes, content_type: str) -> tuple[str, bool]:
    """(body, isBase64Encoded): text answers as they are, anything else base64 for API Gateway."""
    if _is_textual(content_type):
        try:
            return data.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), True


def _check_prediction_count(data: bytes, content_type: str, expected: int) -> None:
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


class Gateway:
    """Handles one API event at a time; holds the client, config, logger and metrics."""

    def __init__(self, config: Config, client: Any, logger: Any, metrics: Any) -> None:
        self.config = config
        self._client = client
        self._logger = logger
        self._metrics = metrics
        self._cold_start = True
        # Time spent inside InvokeEndpoint for the current request (one request at a time).
        self._endpoint_ms: float | None = None
        self._base_headers = {
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if config.cors_allow_origin:
            self._base_headers["Access-Control-Allow-Origin"] = config.cors_allow_origin
            self._base_headers["Access-Control-Expose-Headers"] = "Retry-After,X-Request-Id"
            if config.cors_allow_origin != "*":
                self._base_headers["Vary"] = "Origin"

    # --- responses ---------------------------------------------------------------------------
    def _response(
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

    def _error_response(self, error: ApiError, request_id: str) -> dict[str, Any]:
        body = json.dumps(
            {"error": {"code": error.code, "message": error.message}, "requestId": request_id}
        )
        return self._response(error.status, body, JSON_CONTENT_TYPE, request_id, error.headers)

    def _preflight(self, allowed: tuple[str, ...], request_id: str) -> dict[str, Any]:
        headers = {"Allow": ", ".join((*allowed, "OPTIONS"))}
        if self.config.cors_allow_origin:
            headers.update(
                {
                    "Access-Control-Allow-Methods": ", ".join((*allowed, "OPTIONS")),
                    "Access-Control-Allow-Headers": "Content-Type,Accept,Authorization,X-Api-Key",
                    "Access-Control-Max-Age": "600",
                }
            )
        return self._response(204, "", "text/plain", request_id, headers)

    # --- the endpoint call -------------------------------------------------------------------
    def _invoke(
        self, invocation: Invocation, accept: str | None, request_id: str
    ) -> tuple[bytes, str]:
        """One InvokeEndpoint call: (answer body, its content type), or an ApiError."""
        params: dict[str, Any] = {
            "EndpointName": self.config.endpoint_name,
            "Body": invocation.body,
            "ContentType": invocation.content_type,
        }
        if accept:
            params["Accept"] = accept
        if self.config.inference_component_name:
            params["InferenceComponentName"] = self.config.inference_component_name
        if _INFERENCE_ID_RE.fullmatch(request_id):
            # Ties the endpoint's data-capture records to the API request id.
            params["InferenceId"] = request_id
        call_start_s = time.perf_counter()
        try:
            result = self._client.invoke_endpoint(**params)
            # Read inside the try: a timeout can also strike while the answer streams in.
            body = result["Body"]
            data = body.read() if hasattr(body, "read") else bytes(body)
            return data, result.get("ContentType") or "application/octet-stream"
        except ClientError as err:
            api_error = map_client_error(err, self.config.no_capacity_retry_after_s)
            self._logger.warning(
                "endpoint error",
                extra={
                    "endpoint_error": err.response.get("Error", {}).get("Code"),
                    "endpoint_message": _sanitise(err.response.get("Error", {}).get("Message")),
                    "model_status": err.response.get("OriginalStatusCode"),
                    "model_log_stream": err.response.get("LogStreamArn"),
                },
            )
            raise api_error from err
        except ReadTimeoutError as err:
            raise ApiError(
                504,
                "GatewayTimeout",
                f"the model did not answer within {self.config.read_timeout_s:g} s; "
                "send fewer inputs per request or retry later",
            ) from err
        except (ConnectTimeoutError, EndpointConnectionError) as err:
            raise ApiError(
                503,
                "ServiceUnavailable",
                "the model endpoint could not be reached; retry later",
                {"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
            ) from err
        except (HTTPClientError, IncompleteReadError) as err:
            # The connection broke mid-request or mid-answer (after standard-mode retries).
            raise ApiError(
                502,
                "BadGateway",
                "the connection to the model endpoint broke off; retry the request",
            ) from err
        finally:
            self._endpoint_ms = (time.perf_counter() - call_start_s) * 1000.0

    def _predict(self, request: Request, request_id: str) -> tuple[dict[str, Any], Invocation]:
        accept = request.headers.get("accept", "").strip() or None
        if accept is not None and not _HEADER_VALUE_RE.fullmatch(accept):
            raise ApiError(400, "InvalidHeader", "Accept must be 1-1024 printable ASCII characters")
        if request.headers.get("content-type", "").startswith("image/") and not request.is_base64:
            self._logger.warning(
                "image body arrived as text: the API's binary media types must include image/*"
            )
        invocation = build_invocation(request, self.config)
        data, content_type = self._invoke(invocation, accept, request_id)
        if invocation.input_count is not None:
            _check_prediction_count(data, content_type, invocation.input_count)
        text, encoded = _as_response_body(data, content_type)
        if len(text) > LAMBDA_MAX_RESPONSE_BYTES:
            raise ApiError(
                502, "ResponseTooLarge", "the model's answer exceeds Lambda's 6 MB response limit"
            )
        return self._response(200, text, content_type, request_id, is_base64=encoded), invocation

    # --- entry point -------------------------------------------------------------------------
    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """One API event in, one API Gateway proxy response out; never raises."""
        start_s = time.perf_counter()
        request_id = request_id_of(event, context)
        route = method = ""
        invocation: Invocation | None = None
        self._endpoint_ms = None
        error_code: str | None = None
        try:
            request = parse_event(event)
            route, method = request.path, request.method
            allowed = ROUTES.get(request.path)
            if allowed is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f"no route {request.path}; the API serves POST /predict and GET /health",
                )
            if method == "OPTIONS":
                response = self._preflight(allowed, request_id)
            elif method not in allowed:
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    f"{method or 'no method'} is not allowed on {request.path}; "
                    f"use {' or '.join(allowed)}",
                    {"Allow": ", ".join((*allowed, "OPTIONS"))},
                )
            elif request.path == "/health":
                response = self._response(200, '{"status":"ok"}', JSON_CONTENT_TYPE, request_id)
            else:
                response, invocation = self._predict(request, request_id)
        except ApiError as err:
            error_code = err.code
            response = self._error_response(err, request_id)
        except Exception:  # the contract: a JSON 500, never a stack trace to the client
            self._logger.exception("unhandled error")
            error_code = "InternalError"
            response = self._error_response(
                ApiError(500, "InternalError", "the request could not be processed"), request_id
            )
        self._observe(
            request_id,
            context,
            route,
            method,
            response,
            invocation,
            self._endpoint_ms,
            error_code,
            start_s,
        )
        return response

    def _observe(
        self,
        request_id: str,
        context: Any,
        route: str,
        method: str,
        response: Mapping[str, Any],
        invocation: Invocation | None,
        endpoint_ms: float | None,
        error_code: str | None,
        start_s: float,
    ) -> None:
        """One structured log line and the request's metrics; never the payload itself."""
        latency_ms = (time.perf_counter() - start_s) * 1000.0
        try:
            self._logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "lambda_request_id": getattr(context, "aws_request_id", None),
                    "route": route,
                    "method": method,
                    "status": response["statusCode"],
                    "error_code": error_code,
                    "latency_ms": round(latency_ms, 3),
                    "endpoint_ms": None if endpoint_ms is None else round(endpoint_ms, 3),
                    "payload_bytes": None if invocation is None else len(invocation.body),
                    "inputs": None if invocation is None else invocation.input_count,
                    "input_shape": None if invocation is None else invocation.shape,
                    "cold_start": self._cold_start,
                },
            )
            if self._cold_start:
                self._metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
            self._metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
            if endpoint_ms is not None:
                self._metrics.add_metric(
                    name="EndpointLatency", unit=MetricUnit.Milliseconds, value=endpoint_ms
                )
            if error_code is not None:
                self._metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
                with single_metric(
                    name="ErrorsByCode",
                    unit=MetricUnit.Count,
                    value=1,
                    namespace=self.config.metrics_namespace,
                    default_dimensions={"service": self.config.service_name},
                ) as metric:
                    metric.add_dimension(name="ErrorCode", value=error_code)
            self._metrics.flush_metrics()
        except Exception:  # observability must never turn a good answer into a failure
            self._logger.exception("could not emit logs/metrics")
        finally:
            self._cold_start = False

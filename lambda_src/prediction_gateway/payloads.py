"""``POST /predict`` bodies: validated, and turned into the endpoint's payload.

The shapes users may send are listed in ``lambda_src/README.md`` and published in
``lambda_src/openapi.json``; everything refused here gets a 4xx that says what to send instead.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import JSON_CONTENT_TYPE, Config
from .errors import ApiError
from .events import Request

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

_DATA_URL_RE = re.compile(r"data:[a-zA-Z0-9.+/-]*;base64,")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@dataclass(frozen=True)
class Invocation:
    """What goes to InvokeEndpoint, plus how many inputs the answer must map back to."""

    body: bytes
    content_type: str
    input_count: int | None
    shape: str


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

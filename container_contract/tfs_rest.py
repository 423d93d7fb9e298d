"""TensorFlow Serving's REST encoding as the container applies it: the nginx rules that turn JSON,
JSON Lines and CSV bodies into predict requests (``tensorflowServing.js``), the ``tfs-*`` custom
attributes, ``{"b64": ...}`` binary values in and out, and TF Serving's errors."""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np

JSON_TYPES = ("application/json", "application/jsonlines", "application/jsons")
CSV = "text/csv"


class TfsError(Exception):
    """An error TF Serving answers with 400 ``{"error": ...}``."""


class ServableNotFound(TfsError):
    """No such model or version: TF Serving answers 404."""


def csv_to_tfs_json(data: str) -> str:
    """``csv_request`` from the container's tensorflowServing.js, line for line."""
    needs_quotes = re.search(r'^\s*("|[\d.Ee+\-]+.*)', data) is None
    lines = data.strip().splitlines()
    builder = ['{"instances":[']
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        multiple = "," in line
        part = []
        if multiple:
            part.append("[")
        if needs_quotes:
            part.append('"' + line.replace('"', '\\"', 1).replace(",", '","', 1) + '"')
        else:
            part.append(line)
        if multiple:
            part.append("]")
        builder.append("".join(part))
        if i != len(lines) - 1:
            builder.append(",")
    builder.append("]}")
    return "".join(builder)


def json_to_tfs_json(data: str) -> str:
    """``json_request`` from tensorflowServing.js: JSON Lines, TFS JSON, or one wrapped instance."""
    if re.search(r"[}\]]\s*[\[{]", data):
        lines = data.strip().splitlines()
        items = [line.strip() for line in lines if line.strip()]
        if len(lines) == 1:
            return '{"instances":' + items[0] + "}"
        return '{"instances":[' + ",".join(items) + "]}"
    if re.search(r'"(instances|inputs|examples)"\s*:', data):
        return data
    if not re.match(r"^\s*\[\s*\[", data):
        data = "[" + data + "]"
    return '{"instances":' + data + "}"


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for match in re.findall(r"tfs-[a-z\-]+=[^,]+", header or ""):
        key, _, value = match.partition("=")
        attributes[key] = value
    return attributes


def decode_value(value: Any) -> Any:
    """TF Serving's JSON encoding of binary values: ``{"b64": "..."}``."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError) as exc:
                raise TfsError(f"invalid base64 in b64 value: {exc}") from exc
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def to_jsonable(array: np.ndarray, as_b64: bool = False) -> Any:
    """TF Serving's JSON for an output: string tensors as text, or ``{"b64": ...}`` when the
    output's name ends in ``_bytes`` (TF Serving's rule) or the bytes are not UTF-8."""
    if array.dtype == object:
        return _bytes_to_str(array.tolist(), as_b64)
    return array.tolist()


def _bytes_to_str(value: Any, as_b64: bool) -> Any:
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_bytes_to_str(v, as_b64) for v in value]
    return value


def encode_strings(values: list[Any]) -> list[Any]:
    return [
        encode_strings(v) if isinstance(v, list) else v.encode("utf-8") if isinstance(v, str) else v
        for v in values
    ]

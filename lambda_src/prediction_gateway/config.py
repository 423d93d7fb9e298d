"""The function's configuration: its environment, validated once at init.

A wrong environment fails the init with one message naming every bad variable, so a bad deploy
fails loudly instead of answering errors. See ``lambda_src/README.md`` for each variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# SageMaker InvokeEndpoint accepts at most 6 MiB per request (and per response).
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# API Gateway's integration timeout; our whole invocation must finish inside it.
API_GATEWAY_TIMEOUT_S = 29.0
JSON_CONTENT_TYPE = "application/json"

# Validators are used with fullmatch: `$` would also accept a trailing newline.
_ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_ORIGIN_RE = re.compile(r"(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)")
_METRICS_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_./#:-]{1,255}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A scale-to-zero component bringing a copy back: AWS measures minutes (README "Scale to zero").
RETRY_AFTER_NO_CAPACITY_S = 60


class ConfigError(ValueError):
    """The function's environment is wrong; raised at init so the deploy fails loudly."""


@dataclass(frozen=True)
class Config:
    """Validated function configuration (see lambda_src/README.md for each variable)."""

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

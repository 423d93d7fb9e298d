"""``Gateway.handle``: one API event in, one InvokeEndpoint call, one proxy response out."""

from __future__ import annotations

import re
import time
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)

from .config import JSON_CONTENT_TYPE, Config
from .errors import RETRY_AFTER_UNAVAILABLE_S, ApiError, map_client_error, sanitise
from .events import ROUTES, Request, parse_event, request_id_of
from .observability import Observer, RequestRecord
from .payloads import Invocation, build_invocation
from .responses import (
    LAMBDA_MAX_RESPONSE_BYTES,
    Responses,
    as_response_body,
    check_prediction_count,
)

# InvokeEndpoint's InferenceId: 1-64 printable characters, not starting with a space.
_INFERENCE_ID_RE = re.compile(r"[!-~][ -~]{0,63}")
_HEADER_VALUE_RE = re.compile(r"[ -~]{1,1024}")


class Gateway:
    """Handles one API event at a time, as a Lambda execution environment does.

    Holds what lives as long as the environment (config, client, logger, metrics); what belongs
    to one request lives in that request's ``RequestRecord``.
    """

    def __init__(self, config: Config, client: Any, logger: Any, metrics: Any) -> None:
        self.config = config
        self._client = client
        self._logger = logger
        self._responses = Responses(config.cors_allow_origin)
        self._observer = Observer(config, logger, metrics)

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """One API event in, one API Gateway proxy response out; never raises."""
        record = RequestRecord(
            request_id=request_id_of(event, context),
            lambda_request_id=getattr(context, "aws_request_id", None),
        )
        try:
            response = self._route(event, record)
        except ApiError as err:
            record.error_code = err.code
            response = self._responses.error(err, record.request_id)
        except Exception:  # the contract: a JSON 500, never a stack trace to the client
            self._logger.exception("unhandled error")
            record.error_code = "InternalError"
            response = self._responses.error(
                ApiError(500, "InternalError", "the request could not be processed"),
                record.request_id,
            )
        record.status = response["statusCode"]
        self._observer.observe(record)
        return response

    def _route(self, event: Any, record: RequestRecord) -> dict[str, Any]:
        request = parse_event(event)
        record.route, record.method = request.path, request.method
        allowed = ROUTES.get(request.path)
        if allowed is None:
            raise ApiError(
                404,
                "NotFound",
                f"no route {request.path}; the API serves POST /predict and GET /health",
            )
        if request.method == "OPTIONS":
            return self._responses.preflight(allowed, record.request_id)
        if request.method not in allowed:
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"{request.method or 'no method'} is not allowed on {request.path}; "
                f"use {' or '.join(allowed)}",
                {"Allow": ", ".join((*allowed, "OPTIONS"))},
            )
        if request.path == "/health":
            return self._responses.response(
                200, '{"status":"ok"}', JSON_CONTENT_TYPE, record.request_id
            )
        return self._predict(request, record)

    def _predict(self, request: Request, record: RequestRecord) -> dict[str, Any]:
        accept = request.headers.get("accept", "").strip() or None
        if accept is not None and not _HEADER_VALUE_RE.fullmatch(accept):
            raise ApiError(400, "InvalidHeader", "Accept must be 1-1024 printable ASCII characters")
        if request.headers.get("content-type", "").startswith("image/") and not request.is_base64:
            self._logger.warning(
                "image body arrived as text: the API's binary media types must include image/*"
            )
        invocation = build_invocation(request, self.config)
        record.invocation = invocation
        data, content_type = self._invoke(invocation, accept, record)
        if invocation.input_count is not None:
            check_prediction_count(data, content_type, invocation.input_count)
        text, encoded = as_response_body(data, content_type)
        if len(text) > LAMBDA_MAX_RESPONSE_BYTES:
            raise ApiError(
                502, "ResponseTooLarge", "the model's answer exceeds Lambda's 6 MB response limit"
            )
        return self._responses.response(
            200, text, content_type, record.request_id, is_base64=encoded
        )

    def _invoke(
        self, invocation: Invocation, accept: str | None, record: RequestRecord
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
        if _INFERENCE_ID_RE.fullmatch(record.request_id):
            # Ties the endpoint's data-capture records and logs to the API request id.
            params["InferenceId"] = record.request_id
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
                    "request_id": record.request_id,
                    "endpoint_error": err.response.get("Error", {}).get("Code"),
                    "endpoint_message": sanitise(err.response.get("Error", {}).get("Message")),
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
            record.endpoint_ms = (time.perf_counter() - call_start_s) * 1000.0

"""InvokeEndpoint's errors as botocore reads them: an ``x-amzn-ErrorType`` header and a JSON body
with the message and the operation's modeled fields."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# SageMaker's answer while an inference component has no copy (AWS ML blog, "Unlock cost savings
# with the new scale down to zero feature in SageMaker Inference").
NO_CAPACITY_MESSAGE = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


class RuntimeError_(Exception):
    """An InvokeEndpoint error: botocore's error code, HTTP status, message and modeled fields."""

    def __init__(self, code: str, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.fields = fields


def error_response(err: RuntimeError_, request_id: str) -> web.Response:
    body = {"message": err.message, **err.fields}
    return web.Response(
        status=err.status,
        body=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "x-amzn-ErrorType": err.code,
            "x-amzn-RequestId": request_id,
        },
    )

"""One InvokeEndpoint request sent to the variant's instances: least outstanding requests first,
around instances that refuse connections, drain or are full; the instance's answer (or its
silence) turned into InvokeEndpoint's response or error."""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable

import aiohttp
from aiohttp import web

from local_stage.model_server.server import LOCAL_ERROR_HEADER
from local_stage.runtime_api.errors import RuntimeError_
from local_stage.runtime_api.routing import Endpoint, Instance, Variant

log = logging.getLogger("local_stage.runtime_api")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit, each way
FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")


class _Refused(enum.Enum):
    """An instance that did not take the request: try another."""

    RETRY = "retry"  # down or draining: out of rotation
    OVERLOADED = "overloaded"  # its queue is full


async def send(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    variant: Variant,
    body: bytes,
    headers: dict[str, str],
    log_stream_arn: Callable[[Instance], str],
) -> web.Response:
    """The response of the first instance of the variant that takes the request."""
    name = endpoint.name
    tried: set[str] = set()
    overloaded = 0
    while True:
        inst = variant.pick(tried)
        if inst is None:
            if overloaded:
                raise RuntimeError_(
                    "ThrottlingException",
                    429,
                    f"Endpoint {name} is overloaded: the request queue of every instance of "
                    f"variant {variant.name} is full. Retry with back-off, or add instances.",
                )
            raise RuntimeError_(
                "ServiceUnavailable",
                503,
                f"No instance of variant {variant.name} of endpoint {name} is available "
                "(crashed or restarting). Try your call again.",
            )
        tried.add(inst.url)
        result = await _forward(
            session, endpoint, variant, inst, body, headers, log_stream_arn(inst)
        )
        if result is _Refused.RETRY:
            continue
        if result is _Refused.OVERLOADED:
            overloaded += 1
            continue
        return result


async def _forward(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    variant: Variant,
    inst: Instance,
    body: bytes,
    headers: dict[str, str],
    arn: str,
) -> web.Response | _Refused:
    timeout = aiohttp.ClientTimeout(total=endpoint.container_timeout_s, connect=2)
    inst.outstanding += 1
    try:
        async with session.post(
            f"{inst.url}/invocations", data=body, headers=headers, timeout=timeout
        ) as resp:
            payload = await resp.read()
            status = resp.status
            resp_headers = resp.headers
    except TimeoutError:
        raise RuntimeError_(
            "ModelError",
            424,
            f"Your invocation timed out while waiting for a response from container primary "
            f"(instance {inst.instance_id}, {endpoint.container_timeout_s:g} s). Review the "
            "model's latency, resolve the issue, and try again.",
            ErrorCode="INVOCATION_TIMEOUT",
            LogStreamArn=arn,
        ) from None
    except aiohttp.ClientConnectorError:
        # Nothing was sent: the instance is down (crashed, restarting). Route around it.
        inst.healthy = False
        log.warning("instance %s refused the connection; out of rotation", inst.instance_id)
        return _Refused.RETRY
    except (aiohttp.ClientError, ConnectionError) as exc:
        # The connection broke mid-request: this request is lost, but the instance stays in
        # rotation (another of its workers may be serving); if it is down altogether the
        # next connection is refused and takes it out.
        raise RuntimeError_(
            "ServiceUnavailable",
            503,
            f"Instance {inst.instance_id} of variant {variant.name} stopped responding while "
            f"handling the request ({type(exc).__name__}; it may have crashed and is being "
            "restarted). Try your call again.",
        ) from None
    finally:
        inst.outstanding -= 1
    local_error = resp_headers.get(LOCAL_ERROR_HEADER)
    if local_error in ("overloaded", "draining"):
        if local_error == "draining":
            inst.healthy = False
            return _Refused.RETRY
        return _Refused.OVERLOADED
    if local_error == "timeout":
        raise RuntimeError_(
            "ModelError",
            424,
            f"Your invocation timed out while waiting for a response from container primary "
            f"(instance {inst.instance_id}). Review the model's latency, resolve the issue, "
            "and try again.",
            ErrorCode="INVOCATION_TIMEOUT",
            OriginalStatusCode=status,
            LogStreamArn=arn,
        )
    if status >= 400:
        text = payload.decode("utf-8", errors="replace")
        kind = "client" if status < 500 else "server"
        raise RuntimeError_(
            "ModelError",
            424,
            f'Received {kind} error ({status}) from primary with message "{text}". See the '
            f"log stream {arn} (the model server's log) for more information.",
            ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
            OriginalStatusCode=status,
            OriginalMessage=text,
            LogStreamArn=arn,
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RuntimeError_(
            "ModelError",
            424,
            f"The model's response is {len(payload)} bytes; InvokeEndpoint returns at most "
            f"{MAX_PAYLOAD_BYTES} bytes.",
            ErrorCode="RESPONSE_TOO_LARGE",
            LogStreamArn=arn,
        )
    out_headers = {
        "Content-Type": resp_headers.get("Content-Type", "application/octet-stream"),
        "x-Amzn-Invoked-Production-Variant": variant.name,
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    custom = resp_headers.get("X-Amzn-SageMaker-Custom-Attributes")
    if custom:
        out_headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
    return web.Response(status=200, body=payload, headers=out_headers)

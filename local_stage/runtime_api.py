"""SageMaker Runtime's InvokeEndpoint, served locally on aiohttp.

``POST /endpoints/{EndpointName}/invocations`` as botocore's ``sagemaker-runtime`` service model
describes it (rest-json): the request headers ``Content-Type``, ``Accept``,
``X-Amzn-SageMaker-Custom-Attributes``, ``X-Amzn-SageMaker-Target-Variant``...; the response body
with ``Content-Type`` and ``x-Amzn-Invoked-Production-Variant``; errors with an
``x-amzn-ErrorType`` header and a JSON body, so an unmodified boto3 client pointed here through
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` raises the same exception classes as against AWS:

- unknown endpoint / variant, payload over 6 MiB → ``ValidationError`` (400)
- the container answered 4xx/5xx → ``ModelError`` (424) with ``OriginalStatusCode``,
  ``OriginalMessage``, ``LogStreamArn``; also when it does not answer within the container timeout
- every instance's queue is full → ``ThrottlingException`` (429), the error a serverless
  endpoint gives past its concurrency, which clients retry with back-off
- no instance reachable (all crashed or restarting), or one died mid-request →
  ``ServiceUnavailable`` (503)

An endpoint whose variant hosts an inference component needs InvokeEndpoint's
``InferenceComponentName`` (header ``X-Amzn-SageMaker-Inference-Component``). A component that may
scale to zero releases its model after its idle period (the instances' processes are stopped by
the supervisor, which follows ``GET /_local/capacity``); the next request gets SageMaker's
no-capacity ``ValidationError`` and starts a copy again, as the NoCapacityInvocationFailures alarm
and its step policy do; requests get the same error until an instance answers ``/ping``.

Requests go to the variant's instances by least outstanding requests (SageMaker's
``LEAST_OUTSTANDING_REQUESTS`` routing); an instance that refuses connections is taken out of
rotation and probed on ``/ping`` until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from local_stage.model_server.server import LOCAL_ERROR_HEADER

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit, each way
FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")
LOCAL_ACCOUNT = "000000000000"
# InvokeEndpoint's InferenceComponentName (botocore's sagemaker-runtime service model).
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"
# SageMaker's answer while an inference component has no copy (AWS ML blog, "Unlock cost savings
# with the new scale down to zero feature in SageMaker Inference").
NO_CAPACITY_MESSAGE = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


@dataclass
class Instance:
    url: str
    instance_id: str
    outstanding: int = 0
    healthy: bool = True


@dataclass
class Variant:
    name: str
    instances: list[Instance]
    _rr: int = 0
    # The inference component the variant hosts, and its scale-to-zero state: copies is the
    # desired copy count (0 or 1 here); warming while the copy's instances are starting.
    inference_component: str | None = None
    idle_s: float | None = None
    copies: int = 1
    warming: bool = False
    last_used_s: float = field(default_factory=time.monotonic)
    scaled_out_at_s: float = 0.0

    def scale_in_to_zero(self, idle_for_s: float) -> None:
        self.copies = 0
        for inst in self.instances:
            inst.healthy = False
        log.info(
            "inference component %s scaled to zero after %.0f s idle: releasing its model",
            self.inference_component,
            idle_for_s,
        )

    def scale_out_from_zero(self) -> None:
        self.copies = 1
        self.warming = True
        self.scaled_out_at_s = time.monotonic()
        log.info(
            "inference component %s scaling out from zero: a request found no copy",
            self.inference_component,
        )

    def pick(self, exclude: set[str]) -> Instance | None:
        candidates = [i for i in self.instances if i.healthy and i.url not in exclude]
        if not candidates:
            return None
        self._rr += 1
        # Least outstanding requests; ties rotate so idle instances share the load.
        n = len(candidates)
        rotated = candidates[self._rr % n :] + candidates[: self._rr % n]
        return min(rotated, key=lambda i: i.outstanding)


@dataclass
class Endpoint:
    name: str
    variants: list[Variant]
    container_timeout_s: float = 60.0
    log_group: str = field(default="")

    def __post_init__(self) -> None:
        self.log_group = self.log_group or f"/aws/sagemaker/Endpoints/{self.name}"


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


class RuntimeApi:
    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        *,
        region: str = "us-east-1",
        account: str = LOCAL_ACCOUNT,
        probe_interval_s: float = 0.25,
    ) -> None:
        self.endpoints = endpoints
        self.region = region
        self.account = account
        self.probe_interval_s = probe_interval_s
        self.session: aiohttp.ClientSession | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.in_flight = 0

    def app(self) -> web.Application:
        # Reads up to one byte past the limit so that an oversized payload gets a clear error.
        app = web.Application(client_max_size=MAX_PAYLOAD_BYTES + 1024 * 1024)
        app.router.add_post("/endpoints/{endpoint}/invocations", self.invoke)
        app.router.add_get("/_local/capacity", self.capacity)
        app.router.add_route("*", "/{tail:.*}", self.unknown_operation)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self._probe_task = asyncio.get_running_loop().create_task(self._probe_loop())

    async def _on_cleanup(self, _app: web.Application) -> None:
        if self._probe_task:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        if self.session:
            await self.session.close()

    async def capacity(self, _request: web.Request) -> web.Response:
        """The desired copies of every inference component: what the supervisor runs."""
        components = [
            {
                "endpoint": e.name,
                "variant": v.name,
                "component": v.inference_component,
                "copies": v.copies,
            }
            for e in self.endpoints.values()
            for v in e.variants
            if v.inference_component
        ]
        return web.json_response({"components": components})

    def _scale_idle_components(self) -> None:
        now = time.monotonic()
        for endpoint in self.endpoints.values():
            for variant in endpoint.variants:
                if variant.idle_s is None or variant.copies == 0 or variant.warming:
                    continue
                if any(i.outstanding for i in variant.instances):
                    variant.last_used_s = now
                    continue
                if now - variant.last_used_s >= variant.idle_s:
                    variant.scale_in_to_zero(now - variant.last_used_s)

    async def _probe_loop(self) -> None:
        """Bring instances that refused connections back into rotation once /ping answers 200."""
        while True:
            await asyncio.sleep(self.probe_interval_s)
            self._scale_idle_components()
            for endpoint in self.endpoints.values():
                for variant in endpoint.variants:
                    if variant.copies == 0:
                        continue
                    for inst in variant.instances:
                        if inst.healthy:
                            continue
                        try:
                            assert self.session is not None
                            async with self.session.get(
                                f"{inst.url}/ping", timeout=aiohttp.ClientTimeout(total=2)
                            ) as resp:
                                if resp.status == 200:
                                    inst.healthy = True
                                    log.info("instance %s is back in rotation", inst.instance_id)
                                    if variant.warming:
                                        variant.warming = False
                                        variant.last_used_s = time.monotonic()
                                        log.info(
                                            "inference component %s is serving again, %.1f s "
                                            "after scaling out from zero",
                                            variant.inference_component,
                                            time.monotonic() - variant.scaled_out_at_s,
                                        )
                        except (aiohttp.ClientError, TimeoutError):
                            pass

    async def unknown_operation(self, request: web.Request) -> web.Response:
        err = RuntimeError_(
            "UnknownOperationException",
            404,
            f"{request.method} {request.path} is not an operation of the local SageMaker Runtime "
            "(only POST /endpoints/{EndpointName}/invocations)",
        )
        return error_response(err, str(uuid.uuid4()))

    def log_stream_arn(self, endpoint: Endpoint, variant: Variant, inst: Instance) -> str:
        return (
            f"arn:aws:logs:{self.region}:{self.account}:log-group:{endpoint.log_group}"
            f":log-stream:{variant.name}/{inst.instance_id}"
        )

    def _choose_variant(
        self, endpoint: Endpoint, target: str | None, component: str | None
    ) -> Variant:
        hosts_components = any(v.inference_component for v in endpoint.variants)
        if component or hosts_components:
            for variant in endpoint.variants:
                if component and variant.inference_component == component:
                    return self._with_capacity(variant)
            if not component:
                raise RuntimeError_(
                    "ValidationError",
                    400,
                    f"Endpoint {endpoint.name} hosts inference components: specify one with "
                    "InferenceComponentName.",
                )
            raise RuntimeError_(
                "ValidationError",
                400,
                f"Inference Component {component} not found on endpoint {endpoint.name}.",
            )
        if target:
            for variant in endpoint.variants:
                if variant.name == target:
                    return variant
            names = [v.name for v in endpoint.variants]
            raise RuntimeError_(
                "ValidationError",
                400,
                f"Variant {target} not found for endpoint {endpoint.name} (variants: {names}).",
            )
        (variant,) = endpoint.variants  # the template reader admits one variant per endpoint
        return variant

    @staticmethod
    def _with_capacity(variant: Variant) -> Variant:
        """The variant, or SageMaker's no-capacity error while its component has no copy.

        The first such request starts a copy (what the NoCapacityInvocationFailures alarm's step
        policy does on AWS, a minute later); requests fail the same way until it answers.
        """
        variant.last_used_s = time.monotonic()
        if variant.copies == 0:
            variant.scale_out_from_zero()
        elif not variant.warming:
            return variant
        raise RuntimeError_("ValidationError", 400, NO_CAPACITY_MESSAGE)

    async def invoke(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        # The caller's InferenceId (the gateway sends API Gateway's request id): logged beside
        # SageMaker's own request id, so one grep joins this hop to the API's and the Lambda's.
        inference_id = request.headers.get(INFERENCE_ID_HEADER, "-")
        self.in_flight += 1
        try:
            response = await self._invoke(request, request_id)
            log.debug("%s inference %s: %d", request_id, inference_id, response.status)
            return response
        except RuntimeError_ as err:
            if err.status >= 500 or err.code in ("ModelError", "ThrottlingException"):
                log.warning(
                    "%s inference %s %s: %s", request_id, inference_id, err.code, err.message
                )
            return error_response(err, request_id)
        finally:
            self.in_flight -= 1

    async def _invoke(self, request: web.Request, request_id: str) -> web.Response:
        name = request.match_info["endpoint"]
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise RuntimeError_(
                "ValidationError", 400, f"Endpoint {name} of account {self.account} not found."
            )
        body = await request.read()
        if len(body) > MAX_PAYLOAD_BYTES:
            raise RuntimeError_(
                "ValidationError",
                400,
                f"Request payload is {len(body)} bytes; InvokeEndpoint accepts at most "
                f"{MAX_PAYLOAD_BYTES} bytes. Send a smaller payload.",
            )
        variant = self._choose_variant(
            endpoint,
            request.headers.get("X-Amzn-SageMaker-Target-Variant"),
            request.headers.get(COMPONENT_HEADER),
        )
        headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
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
            result = await self._forward(endpoint, variant, inst, body, headers)
            if result == "retry":
                continue
            if result == "overloaded":
                overloaded += 1
                continue
            return result

    async def _forward(
        self,
        endpoint: Endpoint,
        variant: Variant,
        inst: Instance,
        body: bytes,
        headers: dict[str, str],
    ) -> web.Response | str:
        assert self.session is not None
        timeout = aiohttp.ClientTimeout(total=endpoint.container_timeout_s, connect=2)
        inst.outstanding += 1
        try:
            async with self.session.post(
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
                LogStreamArn=self.log_stream_arn(endpoint, variant, inst),
            ) from None
        except aiohttp.ClientConnectorError:
            # Nothing was sent: the instance is down (crashed, restarting). Route around it.
            inst.healthy = False
            log.warning("instance %s refused the connection; out of rotation", inst.instance_id)
            return "retry"
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
                return "retry"
            return "overloaded"
        if local_error == "timeout":
            raise RuntimeError_(
                "ModelError",
                424,
                f"Your invocation timed out while waiting for a response from container primary "
                f"(instance {inst.instance_id}). Review the model's latency, resolve the issue, "
                "and try again.",
                ErrorCode="INVOCATION_TIMEOUT",
                OriginalStatusCode=status,
                LogStreamArn=self.log_stream_arn(endpoint, variant, inst),
            )
        if status >= 400:
            text = payload.decode("utf-8", errors="replace")
            kind = "client" if status < 500 else "server"
            arn = self.log_stream_arn(endpoint, variant, inst)
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
                LogStreamArn=self.log_stream_arn(endpoint, variant, inst),
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

    async def drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


def endpoints_from_config(config: dict[str, Any]) -> dict[str, Endpoint]:
    """``{"endpoints": {name: {"container_timeout_s": 60, "variants": [{"name",
    "instances": [url, ...], "inference_component", "idle_s"}]}}}`` (what ``up`` writes) →
    Endpoint objects."""
    endpoints = {}
    for name, spec in config["endpoints"].items():
        variants = [
            Variant(
                name=v["name"],
                instances=[
                    Instance(url=url.rstrip("/"), instance_id=f"i-local-{v['name']}-{i}")
                    for i, url in enumerate(v["instances"])
                ],
                inference_component=v.get("inference_component"),
                idle_s=v.get("idle_s"),
            )
            for v in spec["variants"]
        ]
        endpoints[name] = Endpoint(
            name=name,
            variants=variants,
            container_timeout_s=float(spec.get("container_timeout_s", 60)),
        )
    return endpoints

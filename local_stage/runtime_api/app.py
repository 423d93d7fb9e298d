"""The local SageMaker Runtime as an aiohttp application: InvokeEndpoint, the supervisor's view of
the inference components' copies, the probe that brings instances back into rotation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import aiohttp
from aiohttp import web

from local_stage.runtime_api.errors import RuntimeError_, error_response
from local_stage.runtime_api.forwarding import FORWARDED_HEADERS, MAX_PAYLOAD_BYTES, send
from local_stage.runtime_api.routing import (
    Endpoint,
    Instance,
    Variant,
    choose_variant,
    scale_idle_components,
)

log = logging.getLogger("local_stage.runtime_api")

LOCAL_ACCOUNT = "000000000000"
# InvokeEndpoint's InferenceComponentName (botocore's sagemaker-runtime service model).
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"


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

    async def _probe_loop(self) -> None:
        """Bring instances that refused connections back into rotation once /ping answers 200."""
        while True:
            await asyncio.sleep(self.probe_interval_s)
            scale_idle_components(self.endpoints.values())
            for endpoint in self.endpoints.values():
                for variant in endpoint.variants:
                    if variant.copies == 0:
                        continue
                    for inst in variant.instances:
                        if not inst.healthy:
                            await self._probe(variant, inst)

    async def _probe(self, variant: Variant, inst: Instance) -> None:
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
        variant = choose_variant(
            endpoint,
            request.headers.get("X-Amzn-SageMaker-Target-Variant"),
            request.headers.get(COMPONENT_HEADER),
        )
        headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
        assert self.session is not None
        return await send(
            self.session,
            endpoint,
            variant,
            body,
            headers,
            lambda inst: self.log_stream_arn(endpoint, variant, inst),
        )

    async def drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

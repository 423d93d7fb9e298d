"""The container's adapter in front of Ray Serve: ``GET /ping`` and ``POST /invocations`` on the
container's port, forwarded to the application's route ``/``."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("container_contract.ray_serve")


SAGEMAKER_HEADER_PREFIX = "x-amzn-sagemaker-"


def make_adapter(backend_url: str, timeout_s: float) -> Any:
    import json

    import aiohttp
    from aiohttp import web

    async def on_startup(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        app["client"] = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["client"].close()

    def _error(status: int, message: str) -> web.Response:
        return web.Response(
            body=json.dumps({"error": message}).encode(),
            status=status,
            content_type="application/json",
        )

    async def invocations(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower().startswith(SAGEMAKER_HEADER_PREFIX)
        }
        accept = request.headers.get("Accept", "application/json")
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        headers["Accept"] = accept
        try:
            async with request.app["client"].post(
                f"{backend_url}/", data=body, headers=headers
            ) as resp:
                content = await resp.read()
                out_headers = {
                    name: value
                    for name, value in resp.headers.items()
                    if name.lower().startswith(SAGEMAKER_HEADER_PREFIX)
                }
                out_headers["Content-Type"] = resp.headers.get("Content-Type", accept)
                return web.Response(body=content, status=resp.status, headers=out_headers)
        except TimeoutError:
            log.error("Ray Serve did not answer within RAYSERVE_BACKEND_TIMEOUT=%.0f s", timeout_s)
            return _error(504, "Request timeout")
        except aiohttp.ClientConnectionError as exc:
            log.error("cannot reach Ray Serve: %s", exc)
            return _error(503, "Service unavailable")

    async def ping(request: web.Request) -> web.Response:
        try:
            async with request.app["client"].get(
                f"{backend_url}/-/healthz", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                await resp.read()
                return web.Response(status=200 if resp.status == 200 else 503)
        except (TimeoutError, aiohttp.ClientError):
            return web.Response(status=503)

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/invocations", invocations)
    app.router.add_get("/ping", ping)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app

"""Serving an aiohttp app until SIGTERM, then draining: how every local server process runs.

The Ray Serve container's adapter (``ray_serve``) and the local stage's servers share it, so a
stop signal means the same thing to each: finish what is in flight (up to a bound), then exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def serve_app(
    app: Any,
    host: str,
    port: int,
    drain: Callable[[float], Awaitable[None]],
    drain_timeout_s: float,
) -> None:
    """Serve an aiohttp app until SIGTERM/SIGINT, then drain in-flight requests."""
    from aiohttp import web

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    log.info("listening on http://%s:%d (pid %d)", host, port, os.getpid())
    await stop.wait()
    await drain(drain_timeout_s)
    await runner.cleanup()

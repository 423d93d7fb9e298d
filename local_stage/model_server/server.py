"""One model-server instance: the SageMaker container HTTP contract on aiohttp.

``GET /ping`` (200 once the model is loaded, 503 while draining), ``POST /invocations``, and for
the TF flavour TF Serving's REST ``POST /v1/models/<name>[/versions/<v>]:predict``. Decoding and
encoding run in a thread pool, the model in one dedicated thread fed by the dynamic batcher, so
the event loop never blocks on model work; a watchdog restarts a worker whose event loop or model
call stays stuck past the request timeout (``watchdog.Watchdog``). ``GET /_local/stats`` reports
batching counters (not part of the container contract; the local stage's tests and benchmarks
read it).

Errors the local stage itself produces (queue full, per-request timeout) carry an
``X-Local-Stage-Error`` header so that the runtime API can map them to SageMaker's throttling and
timeout errors instead of a ``ModelError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from container_contract.handler import (
    InvocationError,
    InvocationRequest,
    InvocationResponse,
    ServingHandler,
    exception_status,
    json_bytes,
)
from local_stage.model_server import PID_HEADER
from local_stage.model_server.batching import BatchingConfig, DynamicBatcher, Overloaded
from local_stage.model_server.watchdog import WATCHDOG_GRACE_S, Watchdog

log = logging.getLogger(__name__)

LOCAL_ERROR_HEADER = "X-Local-Stage-Error"
# Far above the runtime API's 6 MiB: the container itself has no limit of its own.
MAX_BODY_BYTES = 100 * 1024 * 1024
# input_fn/output_fn run on the event loop itself while they cost less than INLINE_MAX_CPU_S of
# CPU on average and the body is small: for a 32x32 PNG a hop to a pool thread and back costs more
# than the decode (bench/results/local_profile.md). CPU time, because under load a step's wall
# time is mostly waiting for the GIL, and counting that wait sends cheap steps to the pool,
# where they wait longer still. A step that waits on I/O (an input_fn fetching from S3) has a
# small CPU cost but a long wall time: past INLINE_MAX_WALL_S it stays in the pool.
INLINE_MAX_CPU_S = 0.0005
INLINE_MAX_WALL_S = 0.02
INLINE_MAX_BODY_BYTES = 256 * 1024


def model_thread() -> ThreadPoolExecutor:
    """The single thread that loads the model and runs every forward pass.

    Each Python thread that runs a parallel torch op gets its own OpenMP thread team; two teams in
    one process (say, the model loaded on the main thread and served from this one) contend for
    the cores, which cost ResNet-18 about 20% per forward pass on 2 cores.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")


class ModelServer:
    def __init__(
        self,
        handler: ServingHandler,
        batching: BatchingConfig,
        *,
        request_timeout_s: float = 60.0,
        io_threads: int | None = None,
        model_pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.handler = handler
        self.batching = batching
        self.request_timeout_s = request_timeout_s
        self.io_pool = ThreadPoolExecutor(
            max_workers=io_threads or min(32, (os.cpu_count() or 1) * 4),
            thread_name_prefix="io",
        )
        # One thread runs every model call (and should have loaded the model: see model_thread()).
        self.model_pool = model_pool or model_thread()
        self.watchdog = Watchdog(request_timeout_s + WATCHDOG_GRACE_S)
        self.batcher = DynamicBatcher(
            self.watchdog.wrap_model_call(handler.run_batch), batching, self.model_pool
        )
        self.pid_header = {PID_HEADER: str(os.getpid())}
        # Moving averages of each handler step's (CPU, wall) seconds; None: not measured yet.
        self.step_cost_s: dict[str, tuple[float, float] | None] = {
            "prepare": None,
            "finish": None,
        }
        self.in_flight = 0
        self.draining = False
        self.started_at = time.time()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/ping", self.ping)
        app.router.add_post("/invocations", self.invocations)
        app.router.add_get("/_local/stats", self.stats)
        if self.handler.flavour == "tensorflow":
            app.router.add_post(r"/v1/models/{tail:.+}", self.tfs_predict)
        return app

    async def ping(self, _request: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="draining", headers=self.pid_header)
        return web.Response(status=200, text="", headers=self.pid_header)

    async def stats(self, _request: web.Request) -> web.Response:
        b = self.batcher
        body = {
            "pid": os.getpid(),
            "handler": self.handler.describe(),
            "max_batch_size": self.batching.max_batch_size,
            "max_delay_s": self.batching.max_delay_s,
            "max_queue": self.batching.max_queue,
            "batches_run": b.batches_run,
            "items_run": b.items_run,
            "max_batch_seen": b.max_batch_seen,
            "queued": b.queued,
            "in_flight": self.in_flight,
            "step_cost_ms": {
                name: None if cost is None else {"cpu": cost[0] * 1e3, "wall": cost[1] * 1e3}
                for name, cost in self.step_cost_s.items()
            },
        }
        return web.Response(body=json_bytes(body), content_type="application/json")

    def _respond(self, resp: InvocationResponse) -> web.Response:
        headers = {"Content-Type": resp.content_type, **resp.headers}
        return web.Response(status=resp.status, body=resp.body, headers=headers)

    def _local_error(self, status: int, kind: str, message: str) -> web.Response:
        resp = self.handler.error_response(status, message)
        resp.headers[LOCAL_ERROR_HEADER] = kind
        return self._respond(resp)

    async def invocations(self, request: web.Request) -> web.Response:
        if self.draining:
            return self._local_error(503, "draining", "the model server is shutting down")
        self.in_flight += 1
        try:
            # Admission control: requests being decoded, waiting for or in the model count alike.
            if self.in_flight > self.batching.max_queue:
                raise Overloaded(
                    f"{self.in_flight - 1} requests in flight (bound {self.batching.max_queue})"
                )
            inv = InvocationRequest(
                body=await request.read(),
                content_type=request.headers.get("Content-Type"),
                accept=request.headers.get("Accept"),
                custom_attributes=request.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            )
            return self._respond(await self._invoke(inv))
        except Overloaded as exc:
            return self._local_error(503, "overloaded", f"model server overloaded: {exc}")
        except TimeoutError:
            return self._local_error(
                504,
                "timeout",
                f"the model did not answer within {self.request_timeout_s:g} s",
            )
        finally:
            self.in_flight -= 1

    async def _step(self, name: str, small: bool, fn: Any, *args: Any) -> Any:
        """Run a handler step inline when it has proven cheap, else on the I/O pool; time it."""

        def timed() -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args)
            finally:
                costs = (time.thread_time() - cpu, time.perf_counter() - wall)
                previous = self.step_cost_s[name]
                self.step_cost_s[name] = (
                    costs
                    if previous is None
                    else (0.9 * previous[0] + 0.1 * costs[0], 0.9 * previous[1] + 0.1 * costs[1])
                )

        cost = self.step_cost_s[name]
        if (
            small
            and self.handler.steps_may_run_inline
            and cost is not None
            and cost[0] < INLINE_MAX_CPU_S
            and cost[1] < INLINE_MAX_WALL_S
        ):
            return timed()
        return await asyncio.get_running_loop().run_in_executor(self.io_pool, timed)

    async def _invoke(self, inv: InvocationRequest) -> InvocationResponse:
        handler = self.handler
        try:
            async with asyncio.timeout(self.request_timeout_s):
                small = len(inv.body) <= INLINE_MAX_BODY_BYTES
                prepared = await self._step("prepare", small, handler.prepare, inv)
                if prepared.done is not None:
                    return prepared.done
                try:
                    result: Any = await self.batcher.submit(prepared)
                except Overloaded:
                    raise
                except Exception as exc:
                    # The flavour decides what a failed prediction looks like (TF hands TF
                    # Serving's 400 to output_handler; PyTorch answers 500).
                    result = exc
                return await self._step("finish", small, handler.finish, inv, prepared, result)
        except (Overloaded, TimeoutError):
            raise
        except InvocationError as exc:
            return handler.error_response(exc.status, exc.message)
        except Exception as exc:
            # The full traceback goes to this instance's log (the CloudWatch log stream's job).
            log.exception("invocation failed")
            status = exception_status(exc)
            return handler.error_response(status, f"{type(exc).__name__}: {exc}")

    async def tfs_predict(self, request: web.Request) -> web.Response:
        """TF Serving's REST predict, for a ``handler`` that posts to ``context.rest_uri``."""
        from container_contract.tfs import ServableNotFound, TfsError, TfsHandler

        handler = self.handler
        assert isinstance(handler, TfsHandler)
        tail = request.match_info["tail"]
        name, _, method = tail.rpartition(":")
        version = None
        if "/versions/" in name:
            name, _, version = name.partition("/versions/")
        if method != "predict":
            return web.json_response({"error": f"method {method} is not supported"}, status=400)
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.request_timeout_s):
                servable = handler.servable(name, version)
                payload = handler.parse_predict(await request.read(), servable)
                result = await self.batcher.submit(_TfsPrepared(payload))
            if isinstance(result, BaseException):
                raise result
            return web.json_response(handler.format_predict(payload, result))
        except TfsError as exc:
            status = 404 if isinstance(exc, ServableNotFound) else 400
            return web.json_response({"error": str(exc)}, status=status)
        except Overloaded as exc:
            return web.json_response({"error": f"overloaded: {exc}"}, status=503)
        except TimeoutError:
            return web.json_response({"error": "timed out"}, status=504)
        finally:
            self.in_flight -= 1

    async def drain(self, timeout_s: float) -> None:
        """Stop taking requests, let in-flight ones finish (up to ``timeout_s``)."""
        self.draining = True
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.in_flight:
            log.warning("drain timed out with %d requests still in flight", self.in_flight)

    async def close(self) -> None:
        self.watchdog.stop()
        await self.batcher.stop()
        self.model_pool.shutdown(wait=False, cancel_futures=True)
        self.io_pool.shutdown(wait=False, cancel_futures=True)


class _TfsPrepared:
    """What the batcher hands to ``TfsHandler.run_batch`` for a REST predict call."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


async def serve(
    server: ModelServer,
    host: str,
    port: int,
    *,
    drain_timeout_s: float = 30.0,
    reuse_port: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight requests and exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server.batcher.start()
    server.watchdog.start()
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    # With reuse_port several worker processes bind the same port and the kernel spreads new
    # connections over them (SO_REUSEPORT), as one container's model-server workers share 8080.
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=reuse_port or None)
    await site.start()
    log.info("model server listening on http://%s:%d (pid %d)", host, port, os.getpid())
    await stop.wait()
    log.info("draining %d in-flight requests", server.in_flight)
    await server.drain(drain_timeout_s)
    with contextlib.suppress(Exception):
        await site.stop()
    await runner.cleanup()
    await server.close()
    log.info("model server stopped")

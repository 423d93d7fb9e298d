"""Dynamic batching: concurrent requests' payloads go to the model as one batch.

The batcher takes whatever is queued when the model thread becomes free (up to
``max_batch_size``), so under load batches form by themselves and at one client nothing waits.
When the model is idle and fewer than ``max_batch_size`` requests are queued it waits at most
``max_delay_s`` for more, as TorchServe's ``max_batch_delay`` and TF Serving's
``batch_timeout_micros`` do. The queue is bounded: past ``max_queue`` waiting requests a new one
is refused at once (an overload error) instead of piling up latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue is at its bound; the request was not accepted."""


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 1
    max_delay_s: float = 0.0
    max_queue: int = 100

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max batch size must be at least 1, got {self.max_batch_size}")
        if self.max_delay_s < 0:
            raise ValueError(f"max batch delay must be >= 0 seconds, got {self.max_delay_s}")
        if self.max_queue < 1:
            raise ValueError(f"max queue must be at least 1, got {self.max_queue}")


class _Job:
    __slots__ = ("payload", "future", "enqueued_at")

    def __init__(self, payload: Any, future: asyncio.Future[Any]) -> None:
        self.payload = payload
        self.future = future
        self.enqueued_at = time.perf_counter()


class DynamicBatcher:
    def __init__(
        self,
        run_batch: Callable[[list[Any]], Sequence[Any]],
        config: BatchingConfig,
        model_executor: Executor,
    ) -> None:
        self._run_batch = run_batch
        self.config = config
        self._executor = model_executor
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches_run = 0
        self.items_run = 0
        self.max_batch_seen = 0

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(Overloaded("the model server is shutting down"))

    async def submit(self, payload: Any) -> Any:
        """Queue one payload and wait for its result (cancel the await to give up on it)."""
        if self._queue.qsize() >= self.config.max_queue:
            raise Overloaded(
                f"{self._queue.qsize()} requests already queued (bound {self.config.max_queue})"
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(payload, future))
        return await future

    async def _collect(self) -> list[_Job]:
        batch = [await self._queue.get()]
        cfg = self.config
        deadline = time.perf_counter() + cfg.max_delay_s
        while len(batch) < cfg.max_batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining_s = deadline - time.perf_counter()
            if remaining_s <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining_s))
            except TimeoutError:
                break
        # A request whose client gave up (timeout) is dropped before it costs model time.
        return [job for job in batch if not job.future.done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [job.payload for job in batch]
                )
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"handler returned {len(results)} results for {len(batch)} requests"
                    )
            except Exception as exc:  # the handler isolates per-item errors; this is a bug guard
                log.exception("batch of %d failed", len(batch))
                results = [exc] * len(batch)
            self.batches_run += 1
            self.items_run += len(batch)
            self.max_batch_seen = max(self.max_batch_seen, len(batch))
            for job, result in zip(batch, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

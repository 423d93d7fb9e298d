"""The model server's watchdog: a worker whose event loop or model call is stuck past the request
timeout exits, so that its supervisor starts a fresh one."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("local_stage.model_server.server")


WATCHDOG_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the worker
# How long past the request timeout a stalled event loop or model call is tolerated: long enough
# for the timed-out requests to get their 504 first.
WATCHDOG_GRACE_S = 1.0


class Watchdog:
    """Restarts a stuck worker, as TorchServe restarts a worker that misses its response timeout.

    Two things can stall a worker for good: a handler step running on the event loop that blocks
    (every request and even ``/ping`` then wait), and a model call that never returns (``/ping``
    still answers, but every request queues behind it and times out). A thread checks both every
    ``interval_s``; when either has lasted more than ``limit_s``, it names the cause in the log
    and calls ``on_stall`` (by default: exit with WATCHDOG_EXIT_CODE, so the supervisor starts a
    fresh worker and the runtime API routes around it meanwhile).
    """

    def __init__(
        self,
        limit_s: float,
        *,
        interval_s: float = 0.25,
        on_stall: Any = None,
    ) -> None:
        self.limit_s = limit_s
        self.interval_s = interval_s
        self.on_stall = on_stall or self._exit
        self.loop_beat = time.monotonic()
        self.model_call_started: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_task: asyncio.Task[None] | None = None

    @staticmethod
    def _exit(reason: str) -> None:
        logging.shutdown()
        os._exit(WATCHDOG_EXIT_CODE)

    def wrap_model_call(self, fn: Any) -> Any:
        """``fn`` (the batch runner) with its start time recorded for the watchdog."""

        def timed(*args: Any) -> Any:
            self.model_call_started = time.monotonic()
            try:
                return fn(*args)
            finally:
                self.model_call_started = None

        return timed

    async def _beat(self) -> None:
        while True:
            self.loop_beat = time.monotonic()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self.loop_beat = time.monotonic()
        self._beat_task = asyncio.get_running_loop().create_task(self._beat(), name="watchdog")
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._beat_task is not None:
            self._beat_task.cancel()

    def stalled(self, now: float) -> str | None:
        """Why the worker counts as stuck at ``now``, or None."""
        loop_idle = now - self.loop_beat
        if loop_idle > self.limit_s:
            return (
                f"the event loop has not run for {loop_idle:.1f} s (a handler step running on "
                f"it is blocking), past the {self.limit_s:g} s limit"
            )
        started = self.model_call_started
        if started is not None and now - started > self.limit_s:
            return (
                f"one model call has run for {now - started:.1f} s, past the {self.limit_s:g} s "
                "limit; every request behind it would time out"
            )
        return None

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            reason = self.stalled(time.monotonic())
            if reason is not None:
                log.error(
                    "watchdog: %s. Exiting so that a fresh worker replaces this one (TorchServe "
                    "restarts a worker that misses its response timeout the same way).",
                    reason,
                )
                self.on_stall(reason)
                return

"""The model-server watchdog: a stalled event loop or model call is named and acted on."""

from __future__ import annotations

import asyncio
import threading
import time

from local_stage.model_server.watchdog import Watchdog


def test_a_blocked_event_loop_is_reported_with_its_cause():
    stalls: list[str] = []
    fired = threading.Event()

    def on_stall(reason: str) -> None:
        stalls.append(reason)
        fired.set()

    async def main() -> None:
        watchdog = Watchdog(0.5, interval_s=0.05, on_stall=on_stall)
        watchdog.start()
        await asyncio.sleep(0.3)  # the loop runs: no stall
        assert not stalls
        time.sleep(1.0)  # a handler step blocking the loop
        watchdog.stop()

    asyncio.run(main())
    assert fired.wait(2)
    assert len(stalls) == 1 and "event loop has not run" in stalls[0]


def test_a_model_call_running_past_the_limit_is_reported():
    watchdog = Watchdog(1.0, on_stall=lambda reason: None)
    now = time.monotonic()
    watchdog.loop_beat = now
    assert watchdog.stalled(now) is None
    seen: list[float | None] = []
    slow = watchdog.wrap_model_call(lambda items: seen.append(watchdog.model_call_started))
    slow([1])
    assert seen[0] is not None and watchdog.model_call_started is None  # cleared afterwards
    watchdog.model_call_started = now - 1.5
    reason = watchdog.stalled(now)
    assert reason is not None and "one model call has run for 1.5 s" in reason

"""Locust load for the reliability suite's load scenario (``reliability/load.py`` starts it).

Run headless as its own process (``python -m locust -f reliability/locustfile.py --headless``);
everything it needs comes from the environment:

- ``RELIABILITY_STEPS``: the concurrency steps, ``users:seconds,users:seconds,...``;
- ``RELIABILITY_USER_RPS``: each user's pace (requests per second; ``constant_throughput``), so
  that a step's offered load is users x pace whatever the latency;
- ``RELIABILITY_API_KEY``: the ``x-api-key`` header;
- ``RELIABILITY_IMAGES``: a folder of PNG digits, posted in turn to ``POST /predict``;
- ``RELIABILITY_RECORDS``: where each request's record goes, one JSON object a line, written
  from locust's ``request`` event: ``{"step", "start", "ms", "status", "error", "body"}``
  (status 0 with an error: no response at all, e.g. a refused connection or a timeout). At the
  end a ``{"attempted": {step: n}}`` line counts the requests each step started, so a request
  that never completed (cut off, hung) is counted too. After the last step the users send nothing
  for ``DRAIN_S`` seconds, so a request in flight when the last step ends is answered before
  locust stops them, not counted as cut off.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant_throughput, events, task

# API Gateway's integration timeout is 29 s: a request still open after this has hung.
NETWORK_TIMEOUT_S = 40.0

STEPS = [
    (int(users), float(seconds))
    for users, seconds in (
        part.split(":") for part in os.environ.get("RELIABILITY_STEPS", "1:5").split(",")
    )
]
USER_RPS = float(os.environ.get("RELIABILITY_USER_RPS", "5"))
API_KEY = os.environ.get("RELIABILITY_API_KEY", "")
IMAGES = [
    p.read_bytes() for p in sorted(Path(os.environ.get("RELIABILITY_IMAGES", ".")).glob("*.png"))
]

_records_path = os.environ.get("RELIABILITY_RECORDS")
_records = open(_records_path, "a", buffering=1) if _records_path else None  # noqa: SIM115 (open for the whole run)
_lock = threading.Lock()
_attempted: Counter[int] = Counter()
_step = 0  # the step running now (set by the shape)
# After the last step the users keep running this long without sending anything new, so that the
# requests still in flight get their answers before locust stops (and cuts off) the users.
DRAIN_S = 3.0
_draining = False


class StepShape(LoadTestShape):
    """Each step's user count for its seconds (started within a fraction of a second); then
    stop. Locust asks for the shape once a second, so a step lasts its seconds +- 1."""

    def tick(self) -> tuple[int, float] | None:
        global _step, _draining
        elapsed = self.get_run_time()
        start = 0.0
        for index, (users, seconds) in enumerate(STEPS):
            if elapsed < start + seconds:
                _step = index
                return users, 100.0
            start += seconds
        if elapsed < start + DRAIN_S:
            _draining = True
            return STEPS[-1][0], 100.0
        return None


class PredictUser(FastHttpUser):
    wait_time = constant_throughput(USER_RPS)
    network_timeout = NETWORK_TIMEOUT_S
    connection_timeout = NETWORK_TIMEOUT_S

    def on_start(self) -> None:
        self.turn = id(self) % max(len(IMAGES), 1)

    @task
    def predict(self) -> None:
        if _draining:
            return
        step = _step
        _attempted[step] += 1
        self.turn = (self.turn + 1) % max(len(IMAGES), 1)
        self.client.post(
            "/predict",
            # locust 2.47's FastHttpSession.post annotates data as str | dict | None, though its
            # docstring and geventhttpclient send bytes as they are (a PNG is not text).
            data=IMAGES[self.turn] if IMAGES else b"",  # type: ignore[arg-type]
            headers={"x-api-key": API_KEY, "Content-Type": "image/png"},
            context={"step": step},
            name="POST /predict",
        )


@events.request.add_listener
def _record(
    response_time: float,
    response: Any,
    context: dict[str, Any],
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    if _records is None:
        return
    status = int(getattr(response, "status_code", 0) or 0)
    body = ""
    if status != 200:
        try:
            body = (response.text or "")[:300]
        except Exception:  # noqa: BLE001 (no body to read: the record says why)
            body = ""
    elif IMAGES:
        try:
            if not json.loads(response.text).get("predictions"):
                body = "200 without predictions: " + (response.text or "")[:200]
        except (ValueError, AttributeError, TypeError):
            body = "200 with a body that is not JSON: " + str(response.text)[:200]
    record = {
        "step": context.get("step", -1),
        "start": start_time,
        "ms": response_time,
        "status": status,
        "error": None if exception is None or status not in (0,) else repr(exception)[:300],
        "body": body,
    }
    with _lock:
        _records.write(json.dumps(record) + "\n")


@events.quitting.add_listener
def _write_attempted(**_: Any) -> None:
    if _records is not None:
        with _lock:
            _records.write(json.dumps({"attempted": dict(_attempted)}) + "\n")
            _records.flush()

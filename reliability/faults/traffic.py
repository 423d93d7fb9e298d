"""The steady load during a fault: client threads posting one body at a fixed pace."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from reliability.faults.records import Record

CLIENTS = 4  # client threads
CLIENT_RPS = 6.0  # each client's pace: 24 req/s in all, far below the throttle
CLIENT_TIMEOUT_S = 40.0  # past API Gateway's 29 s: a request still open now has hung
BODY = {"instances": [[0.1, 0.2, 0.3, 0.4]]}


class Load:
    """Client threads posting ``BODY`` at a steady pace; every request recorded."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url + "/predict"
        self.headers = {"x-api-key": key, "Content-Type": "application/json"}
        self.t0 = time.monotonic()
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def send(self, session: requests.Session, body: dict[str, Any], control: str = "") -> Record:
        sent = self.now()
        try:
            resp = session.post(
                self.url, data=json.dumps(body), headers=self.headers, timeout=CLIENT_TIMEOUT_S
            )
            status, text = resp.status_code, resp.text
        except requests.RequestException as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        record = Record(sent, self.now(), status, text[:500], control)
        with self.lock:
            self.records.append(record)
        return record

    def _client(self, index: int) -> None:
        period_s = 1.0 / CLIENT_RPS
        # Spread the clients' first requests over one period.
        next_at = time.monotonic() + period_s * index / CLIENTS
        with requests.Session() as session:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                next_at = max(next_at + period_s, time.monotonic())
                self.send(session, BODY)

    def __enter__(self) -> Load:
        for i in range(CLIENTS):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT_S + 5)

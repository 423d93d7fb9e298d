"""A SageMaker Runtime stand-in: `POST /endpoints/{name}/invocations` answered from a script of
replies, the requests recorded. http.server in a thread is enough for a test double."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LAMBDA_SRC = REPO / "lambda_src"
EVENTS = REPO / "tests" / "events"
ENDPOINT = "MlServing-dev-digits-endpoint"


@dataclass
class Reply:
    """What the stand-in answers to one InvokeEndpoint call."""

    status: int = 200
    body: bytes = b'{"predictions": [0]}'
    content_type: str = "application/json"
    error_type: str | None = None  # x-amzn-ErrorType, as SageMaker Runtime sends it
    delay_s: float = 0.0  # before the status line
    body_delay_s: float = 0.0  # after the headers and half the body: a stall mid-answer
    hang_up: bool = False  # close the connection without answering


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RuntimeStandIn:
    url: str
    replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def reset(self, *replies: Reply) -> None:
        self.replies[:] = list(replies)
        self.seen.clear()


def make_request_handler(state: RuntimeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.seen.append(
                Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            reply = state.replies.pop(0) if state.replies else Reply()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.hang_up:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("x-amzn-RequestId", "b0b1c2d3-0000-4000-8000-000000000000")
                if reply.error_type:
                    self.send_header("x-amzn-ErrorType", reply.error_type)
                else:
                    self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
                self.end_headers()
                if reply.body_delay_s:
                    half = len(reply.body) // 2
                    self.wfile.write(reply.body[:half])
                    self.wfile.flush()
                    time.sleep(reply.body_delay_s)
                    self.wfile.write(reply.body[half:])
                else:
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout): nothing to answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler

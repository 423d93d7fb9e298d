"""A local HTTP file server for the fetch tests: serves bytes by path, honours ``Range``, and can
drop a connection part-way, ignore ``Range`` or fail, the way real download servers misbehave."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)  # "/name" -> body
    drop_after: dict[str, int] = field(default_factory=dict)  # first GET: close after N bytes
    ignore_range: bool = False
    status: dict[str, int] = field(default_factory=dict)  # "/name" -> forced HTTP status
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        b = self.behaviour
        b.requests.append((self.path, self.headers.get("Range")))
        if self.path in b.status:
            self.send_error(b.status[self.path])
            return
        body = b.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = _RANGE.match(self.headers.get("Range") or "")
        if match and not b.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        cut = b.drop_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class FileServer:
    """``with FileServer() as server: server.url("/x")``; port picked by the OS."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

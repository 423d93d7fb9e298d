"""What both container flavours share: the request/response types and the handler interface.

A handler splits one invocation into three steps so that the server can batch the middle one:
``prepare`` (decode the request, in an I/O thread), ``run_batch`` (the model, in the one model
thread, on the payloads of several concurrent requests at once) and ``finish`` (encode the
response, in an I/O thread).
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InvocationRequest:
    body: bytes
    content_type: str | None
    accept: str | None
    custom_attributes: str | None = None


@dataclass
class InvocationResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


class InvocationError(Exception):
    """A request the container answers with an HTTP error status (what the real container does)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Prepared:
    """A decoded request.

    ``batchable`` payloads may be merged with other requests' payloads into one model call;
    ``run_alone`` payloads (a ``transform_fn``, a TF ``handler``) are run on their own.
    ``done`` short-cuts the model (e.g. a handler that already produced the response).
    """

    payload: Any
    batchable: bool = False
    run_alone: bool = False
    done: InvocationResponse | None = None
    state: Any = None


class ServingHandler(abc.ABC):
    """One container flavour's request semantics around a loaded model."""

    flavour: str = ""
    # False when prepare/finish may call back into this server over HTTP (a TF handler() posting
    # to TF Serving's REST API, which is this server's event loop): never run them on that loop.
    steps_may_run_inline: bool = True

    @abc.abstractmethod
    def prepare(self, request: InvocationRequest) -> Prepared:
        """Decode a request (runs in an I/O thread). Raise InvocationError for a bad request."""

    @abc.abstractmethod
    def run_batch(self, items: list[Prepared]) -> list[Any]:
        """Run the model on several prepared requests (runs in the model thread).

        Returns one result per item, in order; an item's result may be an Exception, which then
        becomes that request's error response (other items are unaffected).
        """

    @abc.abstractmethod
    def finish(self, request: InvocationRequest, item: Prepared, result: Any) -> InvocationResponse:
        """Encode one request's result (runs in an I/O thread)."""

    @abc.abstractmethod
    def error_response(self, status: int, message: str) -> InvocationResponse:
        """The body the real container sends for an error."""

    def describe(self) -> dict[str, Any]:
        return {"flavour": self.flavour}


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()

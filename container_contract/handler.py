"""The emulated TF Serving container's request/response types and handler interface.

(PyTorch models run in real Ray Serve: ``container_contract/ray_serve/``.)

A handler splits one invocation into three steps so that the server can batch the middle one:
``prepare`` (decode the request, in an I/O thread), ``run_batch`` (the model, in the one model
thread, on the payloads of several concurrent requests at once) and ``finish`` (encode the
response, in an I/O thread).

The handler is the one implementation of the TF Serving container's contract: the model server serves
it over HTTP, and ``model_export.containers`` (what ``python -m model_export verify`` trusts)
calls the same three steps in-process.
"""

from __future__ import annotations

import abc
import hashlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
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


def import_script(path: Path, search_paths: Sequence[Path]) -> ModuleType:
    """Import an artifact's ``code/`` script under a module name unique to its path.

    The containers put ``code/`` on ``PYTHONPATH``; so do we (``search_paths``, first one first),
    and they stay there, for helper modules a handler imports while serving. The unique name lets
    several artifacts live in one process (``model_export``'s tests, ``verify``) without one's
    ``inference`` module and its state replacing another's. Exceptions from the script propagate.
    """
    # The artifact's code/ is not part of this project: the container's own PYTHONPATH rule.
    for folder in reversed(search_paths):
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    name = f"_artifact_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def exception_status(exc: BaseException) -> int:
    """The status a failed step answers with: an ``InvocationError``'s, a handler exception's
    integer ``status_code`` (the toolkit's ``BaseInferenceToolkitError``, our handlers'
    ``RequestError``), else 500."""
    if isinstance(exc, InvocationError):
        return exc.status
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        return status
    return 500

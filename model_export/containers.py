"""Serve an unpacked ``model.tar.gz`` in-process the way its SageMaker container would.

``verify`` uses this to prove an artifact works before deploy (and then also runs a PyTorch
artifact in real Ray Serve, ``verify.verify_in_ray_serve``). There is one implementation of each
container's contract: for PyTorch the artifact's own ``code/serve_app.py`` (its ``Handlers``, what
its Ray Serve deployment calls), for TensorFlow ``container_contract.tfs.TfsHandler`` (which the
local model server serves over HTTP; it follows aws/deep-learning-containers'
``scripts/docker/tensorflow/inference/sagemaker/`` sources).
The classes here call their ``prepare`` -> ``run_batch`` -> ``finish`` steps in-process, without
HTTP, so ``verify`` and the local stage cannot disagree.

API
---
``load(model_dir)`` -> ``PyTorchContainer`` | ``TFServingContainer``, picked by ``manifest.json``'s
``framework`` or, without one, by the layout (``saved_model.pb`` means TensorFlow).

Both containers:

- ``invoke(body: bytes, content_type: str | None, accept: str | None,
  custom_attributes: str | None = None) -> Response``: ``POST /invocations``. Never raises for a
  bad request: the ``Response`` carries the container's status (an ``InvocationError``'s, or a
  handler exception's integer ``status_code``, else 500) and a JSON ``{"error": "..."}`` body.
- ``invoke_batch(requests: Sequence[Request]) -> list[Response]``: several requests through one
  ``run_batch`` (one model call for the requests that can share it, as under the local stage's
  dynamic batching); one request's bad input fails only that request.
- ``ping() -> bool``: ``GET /ping``.
- ``framework`` (``"pytorch"`` | ``"tensorflow"``), ``model_dir``, ``handler`` (the shared one).

``PyTorchContainer(model_dir)``: SageMaker PyTorch's handler contract (``code/<SAGEMAKER_PROGRAM>``'s
``model_fn``/``input_fn``/``predict_fn``/``output_fn`` or ``transform_fn``, the toolkit's
defaults for the rest); ``module`` is the imported script, ``model`` what ``model_fn`` returned.

``TFServingContainer(model_dir, default_model_name=None)``: the TF Serving DLC.

- ``models``: ``{name: {version: path}}`` found by the container's rule (``find_saved_models``);
  ``default_model``: ``default_model_name``, else ``SAGEMAKER_TFS_DEFAULT_MODEL_NAME``, else the
  first by name.
- ``rest_predict(request, model=None, version=None) -> (status, dict)``: TF Serving's REST
  ``:predict`` (400 ``{"error": ...}`` for a bad request, 404 for an unknown model or version).
- ``handler(data, context)`` scripts (which call TF Serving themselves over HTTP) are rejected:
  in-process there is no TF Serving to call; the local stage serves them.

Loading failures raise ``ExportError``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from container_contract.errors import ContainerError
from container_contract.handler import (
    InvocationError,
    InvocationRequest,
    InvocationResponse,
    ServingHandler,
    exception_status,
    import_script,
)
from container_contract.saved_models import find_saved_models
from model_export.errors import ExportError

__all__ = [
    "PyTorchContainer",
    "Request",
    "Response",
    "TFServingContainer",
    "find_saved_models",
    "load",
]

log = logging.getLogger(__name__)

JSON = "application/json"
MANIFEST = "manifest.json"
# Where context.rest_uri points; nothing listens there in-process (handler() scripts are refused).
_TFS_REST_BASE_URL = "http://localhost:8501"


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str | None = JSON
    accept: str | None = None
    custom_attributes: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON

    def json(self) -> Any:
        return json.loads(self.body)


def _error(exc: BaseException) -> Response:
    log.debug("request failed", exc_info=exc)
    message = exc.message if isinstance(exc, InvocationError) else str(exc)
    body = json.dumps({"error": message or type(exc).__name__}).encode("utf-8")
    return Response(exception_status(exc), body, JSON)


def _response(answer: InvocationResponse) -> Response:
    return Response(answer.status, answer.body, answer.content_type)


def _serve(handler: ServingHandler, requests: Sequence[Request]) -> list[Response]:
    """The model server's steps for each request, with one ``run_batch`` for all of them."""
    responses: list[Response | None] = [None] * len(requests)
    pending = []
    for i, request in enumerate(requests):
        inv = InvocationRequest(
            request.body, request.content_type, request.accept, request.custom_attributes
        )
        try:
            item = handler.prepare(inv)
        except Exception as exc:
            responses[i] = _error(exc)
            continue
        if item.done is not None:
            responses[i] = _response(item.done)
        else:
            pending.append((i, inv, item))
    results = handler.run_batch([item for _, _, item in pending]) if pending else []
    for (i, inv, item), result in zip(pending, results, strict=True):
        try:
            responses[i] = _response(handler.finish(inv, item, result))
        except Exception as exc:
            responses[i] = _error(exc)
    return [r for r in responses if r is not None]


@contextlib.contextmanager
def _as_export_error() -> Iterator[None]:
    try:
        yield
    except ContainerError as exc:
        raise ExportError(str(exc)) from exc


def _framework_of(model_dir: Path) -> str:
    manifest_path = model_dir / MANIFEST
    if manifest_path.is_file():
        try:
            framework = json.loads(manifest_path.read_text(encoding="utf-8")).get("framework")
        except (ValueError, AttributeError):
            framework = None
        if framework in ("pytorch", "tensorflow"):
            return framework
    if any(model_dir.rglob("saved_model.pb")):
        return "tensorflow"
    if (model_dir / "model.pth").is_file() or (model_dir / "model.pt").is_file():
        return "pytorch"
    raise ExportError(
        f"{model_dir} holds neither a SavedModel (saved_model.pb) nor model.pth/model.pt; "
        "it is not a SageMaker TensorFlow or PyTorch model artifact"
    )


def load(model_dir: str | Path) -> PyTorchContainer | TFServingContainer:
    """The container emulation for the unpacked artifact in ``model_dir``."""
    model_dir = Path(model_dir)
    if _framework_of(model_dir) == "tensorflow":
        return TFServingContainer(model_dir)
    return PyTorchContainer(model_dir)


class PyTorchContainer:
    """A PyTorch artifact's handlers as its Ray Serve application runs them, without Ray.

    The steps come from the artifact's own ``code/serve_app.py`` (``Handlers``: the same code the
    Serve deployment calls per request and per batch), so what passes here is what the container
    runs. An artifact without one gets this project's copy of that file.
    """

    framework = "pytorch"

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        app_file = self.model_dir / "code" / "serve_app.py"
        if not app_file.is_file():
            from model_export.pytorch_export import SERVE_APP

            log.warning("%s is missing: using model_export's own serve_app.py", app_file)
            app_file = SERVE_APP
        try:
            app_module = import_script(app_file, [self.model_dir / "code"])
            self.handler = app_module.Handlers(str(self.model_dir), dict(os.environ))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"loading the artifact's handlers failed: {type(exc).__name__}: {exc}"
            ) from exc
        self._app_module = app_module

    @property
    def module(self) -> Any:
        return self.handler.module

    @property
    def model(self) -> Any:
        return self.handler.model

    # The handler's predict_fn, replaceable (tests count and fail its calls).
    @property
    def _predict_fn(self) -> Any:
        return self.handler.predict_fn

    @_predict_fn.setter
    def _predict_fn(self, fn: Any) -> None:
        self.handler.predict_fn = fn

    def ping(self) -> bool:
        return self.handler.model is not None

    def _error(self, exc: BaseException) -> Response:
        status = self._app_module.error_status(exc)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        body = json.dumps({"error": message}).encode("utf-8")
        return Response(status, body, JSON)

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None = None,
        custom_attributes: str | None = None,
    ) -> Response:
        return self.invoke_batch([Request(body, content_type, accept, custom_attributes)])[0]

    def invoke_batch(self, requests: Sequence[Request]) -> list[Response]:
        """Each request's ``input_fn``, one ``run_batch`` for all, each one's ``output_fn``."""
        responses: list[Response | None] = [None] * len(requests)
        pending = []
        for i, request in enumerate(requests):
            try:
                item = self.handler.prepare(request.body, request.content_type, request.accept)
            except Exception as exc:
                responses[i] = self._error(exc)
                continue
            pending.append((i, request, item))
        results = self.handler.run_batch([item for _, _, item in pending]) if pending else []
        for (i, request, item), result in zip(pending, results, strict=True):
            try:
                out, content_type = self.handler.finish(item, result, request.accept)
                responses[i] = Response(200, out, content_type)
            except Exception as exc:
                responses[i] = self._error(exc)
        return [r for r in responses if r is not None]


class TFServingContainer:
    """SavedModels served with TF Serving's REST semantics and the DLC's request handling."""

    framework = "tensorflow"

    def __init__(self, model_dir: str | Path, default_model_name: str | None = None) -> None:
        from container_contract.tfs import TfsHandler

        self.model_dir = Path(model_dir)
        env = dict(os.environ)
        if default_model_name:
            env["SAGEMAKER_TFS_DEFAULT_MODEL_NAME"] = default_model_name
        with _as_export_error():
            self.handler = TfsHandler(self.model_dir, env, lambda: _TFS_REST_BASE_URL)
        if self.handler.handler_fn is not None:
            raise ExportError(
                f"{self.model_dir / 'code' / 'inference.py'} defines handler(data, context), which "
                "calls TF Serving over HTTP itself; the in-process emulation supports "
                "input_handler/output_handler (the local stage serves handler())"
            )
        self.models = {
            name: {version: servable.path for version, servable in versions.items()}
            for name, versions in self.handler.servables.items()
        }
        self.default_model = self.handler.default_model

    def ping(self) -> bool:
        return bool(self.handler.servables)

    def rest_predict(
        self, request: bytes | str | dict, model: str | None = None, version: int | None = None
    ) -> tuple[int, dict]:
        """TF Serving's ``POST /v1/models/<model>[/versions/<v>]:predict``."""
        from container_contract.tfs import ServableNotFound, TfsError

        handler = self.handler
        try:
            servable = handler.servable(model, version)
            body = json.dumps(request) if isinstance(request, dict) else request
            payload = handler.parse_predict(body, servable)
            return 200, handler.format_predict(payload, handler.predict(payload))
        except ServableNotFound as exc:
            return 404, {"error": str(exc)}
        except TfsError as exc:
            return 400, {"error": str(exc)}

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None = None,
        custom_attributes: str | None = None,
    ) -> Response:
        return _serve(self.handler, [Request(body, content_type, accept, custom_attributes)])[0]

    def invoke_batch(self, requests: Sequence[Request]) -> list[Response]:
        return _serve(self.handler, requests)

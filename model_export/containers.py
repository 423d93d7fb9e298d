"""Serve an unpacked ``model.tar.gz`` in-process the way its SageMaker container would.

``verify`` uses this to prove an artifact works before deploy; the local model server uses it to
serve artifacts without Docker. Each class follows its container's source (see CONTRACTS.md
sections 2 and 3) rather than our own handlers, so a handler that breaks the container's contract
fails here too.

API
---
``load(model_dir)`` -> ``PyTorchContainer`` | ``TFServingContainer``, picked by ``manifest.json``'s
``framework`` or, without one, by the layout (``saved_model.pb`` means TensorFlow).

Both containers:

- ``invoke(body: bytes, content_type: str | None, accept: str | None,
  custom_attributes: str | None = None) -> Response``: ``POST /invocations``. Never raises for a
  bad request: the ``Response`` carries the container's status (400, 406, 413, 415, 424-worthy
  500s) and a JSON ``{"error": "..."}`` body.
- ``ping() -> bool``: ``GET /ping``.
- ``framework`` (``"pytorch"`` | ``"tensorflow"``), ``model_dir``.

``PyTorchContainer(model_dir)`` (sagemaker-pytorch-inference-toolkit's handler contract): imports
``code/inference.py`` under a module name unique to the artifact (so several artifacts can live
in one process), runs ``model_fn`` once, and exposes the steps for batching:

- ``input(body, content_type) -> data``: ``input_fn``; ``application/json`` and ``text/csv``
  bodies reach it as ``str`` (exact content-type match, as the toolkit does), others as ``bytes``.
- ``predict(data) -> prediction``: ``predict_fn``.
- ``output(prediction, accept) -> (bytes, content_type)``: ``output_fn``; an empty or ``*/*``
  Accept becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``).
- ``invoke_batch(requests: Sequence[Request]) -> list[Response]``: ``input`` per request,
  ONE ``predict`` on ``torch.cat`` of the inputs, ``output`` per request on its rows. Needs
  ``input_fn`` to return tensors with a leading batch dimension and ``predict_fn`` to keep rows
  aligned (our ``inference.py`` documents both); one request's bad input fails only that request.

Handlers may take the toolkit's trailing ``context`` argument (detected from the signature, as the
toolkit does). A handler error with an integer ``status_code`` attribute answers that status; any
other exception is a 500 with the message.

``TFServingContainer(model_dir, default_model_name=None)`` (the TF Serving DLC):

- ``models``: ``{name: {version: path}}`` found by the container's rule (``saved_model.pb`` in a
  folder named by digits; ``<root>/1/`` is model ``model``, ``export/Servo/1/`` is ``Servo``).
- ``default_model``: ``default_model_name``, else ``SAGEMAKER_TFS_DEFAULT_MODEL_NAME``, else the
  first found (the container takes the first its directory walk finds; we sort).
- ``rest_predict(request, model=None, version=None) -> (status, dict)``: TF Serving's REST
  ``:predict``: ``signature_name``; row (``instances``) or columnar (``inputs``) input;
  ``{"b64": ...}`` binary values; the answer is ``{"predictions": ...}`` (row) or
  ``{"outputs": ...}`` (columnar), a list of per-instance objects when a signature has several
  outputs; errors are 400 ``{"error": ...}``.
- ``invoke``: with ``code/inference.py``, its ``input_handler`` -> ``rest_predict`` ->
  ``output_handler`` (a non-200 from TF Serving is answered as is, as the current DLC does);
  without it, the container's nginx rules (JSON / JSON Lines / CSV only, 415 otherwise; TF Serving
  JSON passes through, other JSON is wrapped in ``{"instances": ...}``). The ``tfs-model-name``,
  ``tfs-model-version`` and ``tfs-method`` custom attributes select model, version and method.
  ``handler(data, context)`` scripts (which call TF Serving themselves over HTTP) are rejected.
"""

from __future__ import annotations

import base64
import binascii
import csv
import importlib.util
import inspect
import io
import json
import logging
import os
import re
import sys
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from model_export.errors import ExportError

log = logging.getLogger(__name__)

JSON = "application/json"
MANIFEST = "manifest.json"


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


def _error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode("utf-8"), JSON)


def _status_of(exc: BaseException) -> int:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) and 400 <= code <= 599 else 500


def _import_script(path: Path) -> ModuleType:
    """Import ``path`` as a module whose name is unique to it, its folder first on sys.path."""
    name = f"_artifact_inference_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # The containers put code/ on PYTHONPATH, so helper modules beside inference.py import.
    code_dir = str(path.parent)
    sys.path.insert(0, code_dir)
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ExportError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(code_dir)
    return module


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


# --------------------------------------------------------------------------------------------
# PyTorch: sagemaker-pytorch-inference-toolkit (sagemaker_inference.transformer.Transformer)
# --------------------------------------------------------------------------------------------

# The toolkit decodes these (exact match) to str before input_fn.
_UTF8_TYPES = ("application/json", "text/csv")


def _call_handler(func, *args, context=None):
    """Call a handler with or without the trailing context argument, as the toolkit does."""
    count = len(inspect.signature(func).parameters)
    if count == len(args):
        return func(*args)
    if count == len(args) + 1:
        return func(*args, context)
    raise TypeError(f"{func.__name__} takes {count} arguments but {len(args)} were given")


class _DefaultPyTorchHandlers:
    """The toolkit's defaults for handlers a script leaves out (TorchScript model.pt, JSON/NPY)."""

    @staticmethod
    def model_fn(model_dir):
        import torch

        path = Path(model_dir, "model.pt")
        if not path.is_file():
            raise ExportError(
                "code/inference.py has no model_fn, and the container's default model_fn loads "
                "only a TorchScript model.pt; a state_dict needs a model_fn"
            )
        return torch.jit.load(str(path), map_location="cpu").eval()

    @staticmethod
    def input_fn(body, content_type):
        import numpy as np
        import torch

        if content_type == "application/json":
            return torch.as_tensor(np.array(json.loads(body), dtype=np.float32))
        if content_type == "application/x-npy":
            return torch.as_tensor(np.load(io.BytesIO(body), allow_pickle=False))
        raise _HandlerError(415, f"content type {content_type} is not supported by the defaults")

    @staticmethod
    def predict_fn(data, model):
        import torch

        with torch.no_grad():
            return model(data)

    @staticmethod
    def output_fn(prediction, accept):
        if accept == "application/json":
            return json.dumps(prediction.tolist()).encode("utf-8"), accept
        raise _HandlerError(415, f"accept {accept} is not supported by the defaults")


class _HandlerError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class PyTorchContainer:
    """A model artifact served through its ``code/inference.py`` handlers."""

    framework = "pytorch"

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        script = self.model_dir / "code" / os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
        handlers: Any = _DefaultPyTorchHandlers
        if script.is_file():
            handlers = _import_script(script)
        defaults = _DefaultPyTorchHandlers
        if getattr(handlers, "transform_fn", None) is not None:
            raise ExportError(
                f"{script} defines transform_fn; the local container emulation supports the "
                "model_fn/input_fn/predict_fn/output_fn form (which the local batching needs)"
            )
        self.module = handlers
        self._model_fn = getattr(handlers, "model_fn", defaults.model_fn)
        self._input_fn = getattr(handlers, "input_fn", defaults.input_fn)
        self._predict_fn = getattr(handlers, "predict_fn", defaults.predict_fn)
        self._output_fn = getattr(handlers, "output_fn", defaults.output_fn)
        self._context = SimpleNamespace(system_properties={"model_dir": str(self.model_dir)})
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)
        try:
            self.model = _call_handler(self._model_fn, str(self.model_dir), context=self._context)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"model_fn failed: {type(exc).__name__}: {exc}") from exc

    def ping(self) -> bool:
        return self.model is not None

    def input(self, body: bytes, content_type: str | None) -> Any:
        data: bytes | str = body
        if content_type in _UTF8_TYPES:
            data = body.decode("utf-8")
        return _call_handler(self._input_fn, data, content_type, context=self._context)

    def predict(self, data: Any) -> Any:
        return _call_handler(self._predict_fn, data, self.model, context=self._context)

    def output(self, prediction: Any, accept: str | None) -> tuple[bytes, str]:
        if not accept or accept == "*/*":
            accept = self.default_accept
        result = _call_handler(self._output_fn, prediction, accept, context=self._context)
        if isinstance(result, tuple):
            body, content_type = result
        else:
            body, content_type = result, accept
        if isinstance(body, str):
            body = body.encode("utf-8")
        return bytes(body), content_type

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None = None,
        custom_attributes: str | None = None,
    ) -> Response:
        try:
            prediction = self.predict(self.input(body, content_type))
            payload, response_type = self.output(prediction, accept)
        except Exception as exc:
            log.debug("request failed", exc_info=True)
            return _error(_status_of(exc), str(exc) or type(exc).__name__)
        return Response(200, payload, response_type)

    def invoke_batch(self, requests: Sequence[Request]) -> list[Response]:
        """Serve several requests with one ``predict_fn`` call; responses in request order.

        Inputs that cannot be concatenated (not tensors, or different trailing shapes), and a
        batch whose ``predict_fn`` fails or returns the wrong number of rows, fall back to one
        ``predict_fn`` call per request, so one request never fails because of another.
        """
        import torch

        responses: list[Response | None] = [None] * len(requests)
        inputs: list[tuple[int, Any]] = []
        for i, request in enumerate(requests):
            try:
                inputs.append((i, self.input(request.body, request.content_type)))
            except Exception as exc:
                responses[i] = _error(_status_of(exc), str(exc) or type(exc).__name__)
        predictions: dict[int, Any] = {}
        batchable = (
            len(inputs) > 1
            and all(isinstance(data, torch.Tensor) and data.dim() >= 1 for _, data in inputs)
            and len({tuple(data.shape[1:]) for _, data in inputs}) == 1
        )
        if batchable:
            try:
                batch = self.predict(torch.cat([data for _, data in inputs]))
                if len(batch) != sum(len(data) for _, data in inputs):
                    raise ValueError("predict_fn returned a different number of rows")
            except Exception:
                log.debug("batched predict_fn failed; serving the requests one by one")
            else:
                start = 0
                for i, data in inputs:
                    predictions[i] = batch[start : start + len(data)]
                    start += len(data)
        for i, data in inputs:
            try:
                prediction = predictions[i] if i in predictions else self.predict(data)
                payload, response_type = self.output(prediction, requests[i].accept)
                responses[i] = Response(200, payload, response_type)
            except Exception as exc:
                responses[i] = _error(_status_of(exc), str(exc) or type(exc).__name__)
        return [r for r in responses if r is not None]


# --------------------------------------------------------------------------------------------
# TensorFlow Serving DLC: serve.py / tfs_utils.py / tensorflowServing.js / python_service.py
# --------------------------------------------------------------------------------------------

# The python service's request context (tfs_utils.Context in the current DLC).
TfsContext = namedtuple(
    "TfsContext",
    "model_name, model_version, method, rest_uri, grpc_port, channel, "
    "custom_attributes, request_content_type, accept_header, content_length, timeout",
)

_VERSION_DIR = re.compile(r"^\d+$")
_MODEL_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
_REST_URI = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:(\w+)$")


def find_saved_models(model_dir: Path) -> dict[str, dict[int, Path]]:
    """``{name: {version: path}}`` by the container's rule (tfs_utils.find_models)."""
    models: dict[str, dict[int, Path]] = {}
    for pb in sorted(model_dir.rglob("saved_model.pb")):
        version_dir = pb.parent
        if version_dir == model_dir or not _VERSION_DIR.match(version_dir.name):
            continue
        base = version_dir.parent
        # The container unpacks into /opt/ml/model, so a top-level version folder is "model".
        name = "model" if base == model_dir else base.name
        models.setdefault(name, {})[int(version_dir.name)] = version_dir
    return models


class _FakeHttpResponse:
    """What ``output_handler`` receives: the parts of ``requests.Response`` handlers use."""

    def __init__(self, status_code: int, document: dict) -> None:
        self.status_code = status_code
        self.content = json.dumps(document).encode("utf-8")
        self.text = self.content.decode("utf-8")
        self.headers = {"Content-Type": JSON}
        self.ok = status_code < 400

    def json(self) -> Any:
        return json.loads(self.content)


class _RestError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _parse_custom_attributes(header: str | None) -> dict[str, str]:
    if not header:
        return {}
    return dict(item.split("=", 1) for item in re.findall(r"(tfs-[a-z\-]+=[^,]+)", header))


class TFServingContainer:
    """SavedModels served with TF Serving's REST semantics and the DLC's request handling."""

    framework = "tensorflow"

    def __init__(self, model_dir: str | Path, default_model_name: str | None = None) -> None:
        import tensorflow as tf

        self._tf = tf
        self.model_dir = Path(model_dir)
        self.models = find_saved_models(self.model_dir)
        if not self.models:
            raise ExportError(
                f"no SavedModel under a numbered version folder in {self.model_dir}; the TF "
                "Serving container fails to start (put it under <name>/<version>/)"
            )
        self.default_model = (
            default_model_name
            or os.environ.get("SAGEMAKER_TFS_DEFAULT_MODEL_NAME")
            or next(iter(self.models))
        )
        if self.default_model not in self.models:
            raise ExportError(
                f"default model {self.default_model!r} is not among {sorted(self.models)}"
            )
        self._loaded: dict[tuple[str, int], Any] = {}
        for name, versions in self.models.items():
            for version, path in versions.items():
                try:
                    self._loaded[(name, version)] = tf.saved_model.load(str(path))
                except Exception as exc:
                    raise ExportError(
                        f"TF Serving could not load {path}: {type(exc).__name__}: {exc}"
                    ) from exc
        self._input_handler = self._output_handler = None
        script = self.model_dir / "code" / "inference.py"
        if script.is_file():
            module = _import_script(script)
            if hasattr(module, "handler"):
                raise ExportError(
                    f"{script} defines handler(data, context), which calls TF Serving over HTTP "
                    "itself; the in-process emulation supports input_handler/output_handler"
                )
            if not (hasattr(module, "input_handler") and hasattr(module, "output_handler")):
                raise ExportError(
                    f"{script} must define both input_handler and output_handler (or handler); "
                    "the container fails every request otherwise (NotImplementedError)"
                )
            self._input_handler = module.input_handler
            self._output_handler = module.output_handler

    def ping(self) -> bool:
        return bool(self._loaded)

    def model_status(self, name: str) -> dict:
        """``GET /v1/models/<name>``."""
        versions = self.models.get(name, {})
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK"}}
                for v in sorted(versions, reverse=True)
            ]
        }

    # ---- TF Serving REST :predict ------------------------------------------------------------

    def rest_predict(
        self, request: bytes | str | dict, model: str | None = None, version: int | None = None
    ) -> tuple[int, dict]:
        """TF Serving's ``POST /v1/models/<model>[/versions/<v>]:predict``."""
        name = model or self.default_model
        if name not in self.models:
            return 404, {"error": f"Servable not found for request: Latest({name})"}
        version = version if version is not None else max(self.models[name])
        if version not in self.models[name]:
            return 404, {"error": f"Servable not found for request: Specific({name}, {version})"}
        try:
            document = request if isinstance(request, dict) else json.loads(request)
            if not isinstance(document, dict):
                raise _RestError("JSON Value: is not an object; the request must be an object")
            return 200, self._predict(self._loaded[(name, version)], document)
        except _RestError as exc:
            return 400, {"error": exc.message}
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, {"error": f"JSON Parse error: {exc}"}

    def _predict(self, loaded: Any, document: dict) -> dict:
        tf = self._tf
        signature_name = document.get("signature_name", "serving_default")
        if signature_name not in loaded.signatures:
            raise _RestError(
                f'Serving signature name: "{signature_name}" not found in signature def'
            )
        fn = loaded.signatures[signature_name]
        specs: dict[str, Any] = fn.structured_input_signature[1]
        has_instances, has_inputs = "instances" in document, "inputs" in document
        if has_instances == has_inputs:
            raise _RestError(
                "Missing 'inputs' or 'instances' key"
                if not has_instances
                else "Request can have either 'instances' or 'inputs' key, but not both"
            )
        if has_instances:
            columns = self._rows_to_columns(document["instances"], specs)
        else:
            columns = self._columnar(document["inputs"], specs)
        tensors = {}
        for key, spec in specs.items():
            if key not in columns:
                raise _RestError(
                    f"Missing input: {key} (signature {signature_name} takes {sorted(specs)})"
                )
            tensors[key] = self._to_tensor(columns[key], spec, key)
        try:
            outputs = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise _RestError(message.strip().splitlines()[0] if message else repr(exc)) from exc
        values = {key: self._to_json(value.numpy(), key) for key, value in outputs.items()}
        if has_inputs:
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        sizes = {len(v) if isinstance(v, list) else -1 for v in values.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise _RestError("Output tensors do not share a batch dimension; use 'inputs'")
        if len(values) == 1:
            return {"predictions": next(iter(values.values()))}
        count = sizes.pop()
        return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(count)]}

    @staticmethod
    def _rows_to_columns(instances: Any, specs: dict[str, Any]) -> dict[str, list]:
        if not isinstance(instances, list) or not instances:
            raise _RestError("'instances' must be a non-empty JSON list")
        names = list(specs)
        if len(names) == 1:
            only = names[0]
            rows = [
                row[only] if isinstance(row, dict) and only in row and "b64" not in row else row
                for row in instances
            ]
            return {only: rows}
        columns: dict[str, list] = {name: [] for name in names}
        for i, row in enumerate(instances):
            if not isinstance(row, dict):
                raise _RestError(f"instance {i} must be an object keyed by {names}")
            for name in names:
                if name not in row:
                    raise _RestError(f"instance {i} lacks input {name!r}")
                columns[name].append(row[name])
        return columns

    @staticmethod
    def _columnar(inputs: Any, specs: dict[str, Any]) -> dict[str, Any]:
        names = list(specs)
        if isinstance(inputs, dict) and "b64" not in inputs:
            return inputs
        if len(names) != 1:
            raise _RestError(f"'inputs' must be an object keyed by {names}")
        return {names[0]: inputs}

    def _to_tensor(self, value: Any, spec: Any, key: str) -> Any:
        import numpy as np

        tf = self._tf
        if spec.dtype == tf.string:
            array = np.array(_decode_strings(value), dtype=object)
        else:
            try:
                array = np.array(value, dtype=spec.dtype.as_numpy_dtype)
            except (TypeError, ValueError) as exc:
                raise _RestError(
                    f"input {key!r}: not a rectangular {spec.dtype.name} array: {exc}"
                ) from exc
        if not spec.shape.is_compatible_with(array.shape):
            raise _RestError(
                f"input {key!r} has shape {list(array.shape)}; the signature expects "
                f"{spec.shape.as_list()} (None = any size)"
            )
        return tf.constant(array, dtype=spec.dtype)

    @staticmethod
    def _to_json(array: Any, key: str) -> Any:
        if array.dtype == object:
            as_b64 = key.endswith("_bytes")

            def convert(item: Any) -> Any:
                if isinstance(item, list):
                    return [convert(x) for x in item]
                if as_b64:
                    return {"b64": base64.b64encode(item).decode("ascii")}
                return item.decode("utf-8", "replace")

            return convert(array.tolist())
        return array.tolist()

    # ---- SageMaker POST /invocations --------------------------------------------------------

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None = None,
        custom_attributes: str | None = None,
    ) -> Response:
        attributes = _parse_custom_attributes(custom_attributes)
        name = attributes.get("tfs-model-name")
        version = attributes.get("tfs-model-version")
        method = attributes.get("tfs-method", "predict")
        if name is not None and not _MODEL_NAME.match(name):
            return _error(400, "invalid tfs-model-name")
        if version is not None and not _VERSION_DIR.match(version):
            return _error(400, "invalid tfs-model-version: must be a positive integer")
        if method not in ("predict", "classify", "regress"):
            return _error(400, "invalid tfs-method: must be one of predict|classify|regress")
        name = name or self.default_model
        if self._input_handler is None:
            return self._invoke_default(body, content_type, accept, name, version, method)
        rest_uri = f"http://localhost:8501/v1/models/{name}"
        if version:
            rest_uri += f"/versions/{version}"
        rest_uri += f":{method}"
        context = TfsContext(
            name,
            version,
            method,
            rest_uri,
            "9000",
            None,
            custom_attributes,
            content_type or JSON,
            accept or JSON,
            len(body),
            60,
        )
        try:
            processed = self._input_handler(io.BytesIO(body), context)
            status, answer = self._post(context.rest_uri, processed)
            if status != 200:
                return Response(status, json.dumps(answer).encode("utf-8"), JSON)
            payload, response_type = self._output_handler(
                _FakeHttpResponse(status, answer), context
            )
        except Exception as exc:
            log.debug("request failed", exc_info=True)
            return _error(_status_of(exc), str(exc) or type(exc).__name__)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return Response(200, bytes(payload), response_type)

    def _post(self, uri: str, body: Any) -> tuple[int, dict]:
        match = _REST_URI.search(uri)
        if not match:
            return 404, {"error": f"Malformed request: POST {uri}"}
        name, version, method = match.groups()
        if method != "predict":
            return 400, {
                "error": f"the local TF Serving emulation implements :predict, not :{method}"
            }
        if isinstance(body, dict):
            body = json.dumps(body)
        return self.rest_predict(body, name, int(version) if version else None)

    def _invoke_default(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        name: str,
        version: str | None,
        method: str,
    ) -> Response:
        # tensorflowServing.js: exact content-type match, then reshape into TF Serving JSON.
        text = body.decode("utf-8", "replace")
        if content_type in ("application/json", "application/jsonlines", "application/jsons"):
            if re.search(r'"(instances|inputs|examples)"\s*:', text):
                request = text
            elif re.search(r"[}\]]\s*[\[{]", text):
                lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
                request = (
                    '{"instances":'
                    + (lines[0] if len(lines) == 1 else "[" + ",".join(lines) + "]")
                    + "}"
                )
            else:
                request = (
                    '{"instances":'
                    + (text if re.match(r"^\s*\[\s*\[", text) else "[" + text + "]")
                    + "}"
                )
        elif content_type == "text/csv":
            rows = []
            for line in text.strip().splitlines():
                fields = next(csv.reader([line.strip()]), [])
                rows.append(_csv_instance(fields))
            request = json.dumps({"instances": rows})
        else:
            return _error(415, f"Unsupported Media Type: {content_type or 'Unknown'}")
        uri = f"/v1/models/{name}" + (f"/versions/{version}" if version else "") + f":{method}"
        status, answer = self._post(uri, request)
        response_type = JSON
        if accept:
            types = accept.strip().replace(" ", "").split(",")
            if "application/jsonlines" in types or JSON in types:
                response_type = types[0]
        return Response(status, json.dumps(answer).encode("utf-8"), response_type)


def _csv_instance(fields: list[str]) -> Any:
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    quoted = bool(fields) and number(fields[0]) is None
    values = [f if quoted else number(f) for f in fields]
    return values if len(values) > 1 else values[0]


def _decode_strings(value: Any) -> Any:
    """JSON values for a DT_STRING input: ``{"b64": ...}`` to bytes, text to UTF-8 bytes."""
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise _RestError('binary values must be {"b64": "<base64 string>"}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _RestError(f"Unable to base64 decode: {exc}") from exc
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _RestError(f'expected a string or {{"b64": ...}}, got {type(value).__name__}')

"""The TensorFlow Serving container's semantics (aws/deep-learning-containers, TF inference).

Model discovery follows the container: every ``saved_model.pb`` whose parent folder is all digits
(``1/saved_model.pb`` is model ``model``, ``<name>/<ver>/`` is ``<name>``, ``export/Servo/1/`` is
``Servo``); a SavedModel anywhere else is an error naming the fix. Without ``code/inference.py``
requests follow the container's nginx rules (``tensorflowServing.js``): exact content types
``application/json``/``application/jsonlines``/``application/jsons`` and ``text/csv``, JSON with
``instances``/``inputs``/``examples`` passed through, other JSON wrapped as one instance, JSON
Lines and CSV lines turned into instances, 415 otherwise. With ``code/inference.py`` its
``input_handler``/``output_handler`` (or ``handler``) run as in the container's Python service,
``output_handler`` receiving a ``requests.Response`` from TF Serving's REST API.

``tfs-model-name``/``tfs-model-version``/``tfs-method`` custom attributes pick the servable (400
when malformed, 404 when there is no such model or version).

TF Serving itself is replaced by the SavedModel's signature called in-process; its REST predict
API (row ``instances`` → ``predictions``, columnar ``inputs`` → ``outputs``, ``{"b64": ...}``
binary values in, and out for outputs named ``*_bytes``, ``signature_name``) is reproduced, also
over HTTP at ``/v1/models/<name>:predict`` for a ``handler`` that posts to ``context.rest_uri``.
Concurrent requests are batched into one signature call, as TF Serving's batching does.

Size: one module because it is one class: ``TfsHandler`` is the container's service and the TF
Serving it calls, whose predict parsing, batching and response formatting share the servables
and signatures it loads; what stands apart from that state lives beside it (``saved_models``:
where the container finds models; ``tfs_rest``: the REST encoding and nginx rules).
"""

from __future__ import annotations

import collections
import io
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from container_contract.batch_split import split_output
from container_contract.errors import ContainerError
from container_contract.handler import (
    InvocationError,
    InvocationRequest,
    InvocationResponse,
    Prepared,
    ServingHandler,
    import_script,
    json_bytes,
)
from container_contract.saved_models import discover_saved_models
from container_contract.tfs_rest import (
    CSV,
    JSON_TYPES,
    ServableNotFound,
    TfsError,
    csv_to_tfs_json,
    decode_value,
    encode_strings,
    json_to_tfs_json,
    parse_custom_attributes,
    to_jsonable,
)

log = logging.getLogger(__name__)


Context = collections.namedtuple(
    "Context",
    "model_name, model_version, method, rest_uri, grpc_uri, custom_attributes, "
    "request_content_type, accept_header, content_length",
)


# What the container accepts in the tfs-model-name / tfs-model-version custom attributes.
_MODEL_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
_VERSION = re.compile(r"\A\d+\Z")


@dataclass
class _Servable:
    name: str
    version: int
    path: Path
    signatures: dict[str, Any]


@dataclass
class TfsPayload:
    servable: _Servable
    signature_name: str
    arrays: dict[str, np.ndarray]
    row_format: bool
    batch: int | None  # rows, when every input has a leading batch dimension


class TfsHandler(ServingHandler):
    flavour = "tensorflow"

    def __init__(
        self, model_dir: Path, env: Mapping[str, str], rest_base_url: Callable[[], str]
    ) -> None:
        import tensorflow as tf  # heavy: only in the worker that serves a TF model

        self._tf = tf
        self._rest_base_url = rest_base_url
        self.model_dir = model_dir
        discovered = discover_saved_models(model_dir)
        self.servables: dict[str, dict[int, _Servable]] = {}
        for name, versions in discovered.items():
            for version, path in versions.items():
                try:
                    loaded = tf.saved_model.load(str(path))
                except Exception as exc:
                    raise ContainerError(
                        f"loading SavedModel {path.relative_to(model_dir)} failed: {exc}"
                    ) from exc
                sigs = dict(loaded.signatures)
                if not sigs:
                    raise ContainerError(
                        f"SavedModel {path.relative_to(model_dir)} has no serving signatures"
                    )
                servable = _Servable(name, version, path, sigs)
                servable.loaded = loaded  # type: ignore[attr-defined]  # keeps variables alive
                self.servables.setdefault(name, {})[version] = servable
        default = env.get("SAGEMAKER_TFS_DEFAULT_MODEL_NAME") or sorted(self.servables)[0]
        if default not in self.servables:
            raise ContainerError(
                f"SAGEMAKER_TFS_DEFAULT_MODEL_NAME={default} but the artifact has models "
                f"{sorted(self.servables)}"
            )
        self.default_model = default
        self.handler_fn = self.input_handler = self.output_handler = None
        code_dir = model_dir / "code"
        if (code_dir / "inference.py").is_file():
            if (code_dir / "requirements.txt").is_file():
                log.warning(
                    "code/requirements.txt is not installed here (the container pip-installs it "
                    "at start-up); install its packages into this venv if needed"
                )
            try:
                module = import_script(code_dir / "inference.py", [code_dir / "lib", code_dir])
            except Exception as exc:
                raise ContainerError(
                    f"importing code/inference.py failed: {type(exc).__name__}: {exc}"
                ) from exc
            self.handler_fn = getattr(module, "handler", None)
            self.input_handler = getattr(module, "input_handler", None)
            self.output_handler = getattr(module, "output_handler", None)
            if self.handler_fn is None and (
                self.input_handler is None or self.output_handler is None
            ):
                raise ContainerError(
                    "code/inference.py must define handler(data, context), or both "
                    "input_handler(data, context) and output_handler(data, context)"
                )
            self.steps_may_run_inline = self.handler_fn is None

    def describe(self) -> dict[str, Any]:
        models = {n: sorted(v) for n, v in self.servables.items()}
        mode = (
            "handler"
            if self.handler_fn
            else "input/output_handler"
            if self.input_handler
            else "default"
        )
        return {"flavour": self.flavour, "models": models, "inference": mode}

    # ---- TF Serving's REST predict API, in-process ----

    def servable(self, name: str | None, version: str | int | None) -> _Servable:
        name = name or self.default_model
        versions = self.servables.get(name)
        if versions is None:
            raise ServableNotFound(f"Servable not found for request: Latest({name})")
        if version is None:
            return versions[max(versions)]
        try:
            return versions[int(version)]
        except (KeyError, ValueError):
            raise ServableNotFound(
                f"Servable not found for request: Specific({name}, {version})"
            ) from None

    def parse_predict(self, body: str | bytes, servable: _Servable) -> TfsPayload:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TfsError(f"JSON Parse error: {exc}") from exc
        if not isinstance(request, dict):
            raise TfsError('JSON Value: not a JSON object; expected {"instances": [...]}')
        sig_name = request.get("signature_name", "serving_default")
        signature = servable.signatures.get(sig_name)
        if signature is None:
            raise TfsError(f'Serving signature name: "{sig_name}" not found in signature def')
        specs: dict[str, Any] = signature.structured_input_signature[1]
        if "examples" in request:
            raise TfsError(
                'the classify/regress API ("examples") is not supported by the local stage; '
                'send "instances" or "inputs"'
            )
        if "instances" in request and "inputs" in request:
            raise TfsError("Request can have either 'instances' or 'inputs' key, but not both")
        if "instances" in request:
            rows = decode_value(request["instances"])
            if not isinstance(rows, list):
                raise TfsError("Expecting 'instances' to be an list/array")
            if len(specs) == 1:
                (only,) = specs
                values = {only: [r[only] if isinstance(r, dict) and only in r else r for r in rows]}
            else:
                if not all(isinstance(r, dict) for r in rows):
                    raise TfsError(
                        f"the model has inputs {sorted(specs)}: each instance must be an object "
                        "with those keys"
                    )
                values = {k: [r.get(k) for r in rows] for k in specs}
            row_format = True
        elif "inputs" in request:
            inputs = decode_value(request["inputs"])
            if isinstance(inputs, dict):
                values = inputs
            elif len(specs) == 1:
                values = {next(iter(specs)): inputs}
            else:
                raise TfsError(f"the model has inputs {sorted(specs)}: 'inputs' must be an object")
            row_format = False
        else:
            raise TfsError("Missing 'inputs' or 'instances' key")
        missing = sorted(set(specs) - set(values))
        unknown = sorted(set(values) - set(specs))
        if missing or unknown:
            raise TfsError(
                f"inputs do not match the signature {sorted(specs)}: "
                f"missing {missing}, unknown {unknown}"
            )
        arrays = {}
        for key, spec in specs.items():
            arrays[key] = self._to_array(key, values[key], spec)
        batch: int | None = None
        leading = {a.shape[0] if a.ndim else None for a in arrays.values()}
        dims_ok = all(
            spec.shape.rank is not None and spec.shape.rank >= 1 and spec.shape[0] is None
            for spec in specs.values()
        )
        if len(leading) == 1 and None not in leading and dims_ok:
            batch = int(next(iter(leading)))  # type: ignore[arg-type]
        return TfsPayload(servable, sig_name, arrays, row_format, batch)

    def _to_array(self, key: str, value: Any, spec: Any) -> np.ndarray:
        tf = self._tf
        try:
            if spec.dtype == tf.string:
                array = np.array(
                    value if not isinstance(value, list) else encode_strings(value), dtype=object
                )
            else:
                array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
        except (ValueError, TypeError) as exc:
            raise TfsError(f"input '{key}': cannot convert to {spec.dtype.name}: {exc}") from exc
        if not spec.shape.is_compatible_with(array.shape):
            raise TfsError(
                f"input '{key}' has shape {list(array.shape)}; the signature expects "
                f"{spec.shape.as_list()} (None = any size)"
            )
        return array

    def predict(self, payload: TfsPayload) -> dict[str, np.ndarray]:
        signature = payload.servable.signatures[payload.signature_name]
        try:
            outputs = signature(**{k: self._tf.constant(v) for k, v in payload.arrays.items()})
        except Exception as exc:
            raise TfsError(
                str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            ) from exc
        return {k: v.numpy() for k, v in outputs.items()}

    @staticmethod
    def format_predict(payload: TfsPayload, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """TF Serving's answer; raises TfsError (a 400) for row format without a shared batch
        dimension, which TF Serving cannot split into per-instance objects either."""
        values = {k: to_jsonable(v, k.endswith("_bytes")) for k, v in outputs.items()}
        if not payload.row_format:
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise TfsError("Output tensors do not share a batch dimension; use 'inputs'")
        if len(values) == 1:
            return {"predictions": next(iter(values.values()))}
        count = next(iter(outputs.values())).shape[0]
        return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(count)]}

    # ---- batching ----

    def run_batch(self, items: list[Prepared]) -> list[Any]:
        results: list[Any] = [None] * len(items)
        groups: dict[tuple[Any, ...], list[int]] = {}
        singles: list[int] = []
        for i, item in enumerate(items):
            payload = item.payload
            if isinstance(payload, TfsPayload) and payload.batch is not None:
                key = (
                    id(payload.servable),
                    payload.signature_name,
                    tuple(
                        (k, str(a.dtype), a.shape[1:]) for k, a in sorted(payload.arrays.items())
                    ),
                )
                groups.setdefault(key, []).append(i)
            else:
                singles.append(i)
        for idxs in groups.values():
            if len(idxs) == 1:
                singles.extend(idxs)
                continue
            first = items[idxs[0]].payload
            sizes = [items[i].payload.batch for i in idxs]
            merged = TfsPayload(
                first.servable,
                first.signature_name,
                {
                    k: np.concatenate([items[i].payload.arrays[k] for i in idxs])
                    for k in first.arrays
                },
                first.row_format,
                sum(sizes),
            )
            try:
                parts = split_output(self.predict(merged), sizes)
            except TfsError:
                parts = None
            if parts is None:
                singles.extend(idxs)
                continue
            for i, part in zip(idxs, parts, strict=True):
                results[i] = part
        for i in singles:
            payload = items[i].payload
            if isinstance(payload, TfsError):
                results[i] = payload  # input_handler's body was not valid TF Serving JSON
                continue
            try:
                results[i] = self.predict(payload)
            except Exception as exc:
                results[i] = exc
        return results

    # ---- the container's /invocations ----

    def _context(self, request: InvocationRequest, servable: _Servable, method: str) -> Any:
        base = self._rest_base_url()
        return Context(
            servable.name,
            str(servable.version),
            method,
            f"{base}/v1/models/{servable.name}:{method}",
            None,
            request.custom_attributes,
            request.content_type,
            request.accept,
            len(request.body),
        )

    def prepare(self, request: InvocationRequest) -> Prepared:
        attributes = parse_custom_attributes(request.custom_attributes)
        method = attributes.get("tfs-method", "predict")
        name, version = attributes.get("tfs-model-name"), attributes.get("tfs-model-version")
        if name is not None and not _MODEL_NAME.match(name):
            raise InvocationError(400, "invalid tfs-model-name")
        if version is not None and not _VERSION.match(version):
            raise InvocationError(400, "invalid tfs-model-version: must be a positive integer")
        try:
            servable = self.servable(name, version)
        except TfsError as exc:
            raise InvocationError(404, str(exc)) from exc
        if method != "predict":
            raise InvocationError(
                400, f"tfs-method={method} is not supported by the local stage (only predict)"
            )
        if self.handler_fn is not None:
            context = self._context(request, servable, method)
            out = self.handler_fn(io.BytesIO(request.body), context)
            return Prepared(payload=None, done=self._handler_output(out, request))
        if self.input_handler is not None:
            context = self._context(request, servable, method)
            tfs_body = self.input_handler(io.BytesIO(request.body), context)
            try:
                payload: Any = self.parse_predict(tfs_body or b"", servable)
            except TfsError as exc:
                payload = exc  # output_handler sees TF Serving's 400, as in the container
            return Prepared(payload=payload, state=context)
        content_type = request.content_type
        if content_type not in JSON_TYPES and content_type != CSV:
            raise InvocationError(415, f"Unsupported Media Type: {content_type or 'Unknown'}")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvocationError(400, f"request body is not UTF-8 text: {exc}") from exc
        tfs_body = json_to_tfs_json(text) if content_type in JSON_TYPES else csv_to_tfs_json(text)
        try:
            return Prepared(payload=self.parse_predict(tfs_body, servable))
        except TfsError as exc:
            raise InvocationError(400, str(exc)) from exc

    def _handler_output(self, out: Any, request: InvocationRequest) -> InvocationResponse:
        if not isinstance(out, tuple) or len(out) != 2:
            raise InvocationError(
                500,
                f"the handler must return (response body, content type); got {type(out).__name__}",
            )
        body, content_type = out
        if isinstance(body, str):
            body = body.encode("utf-8")
        return InvocationResponse(200, bytes(body), content_type or "application/json")

    def finish(self, request: InvocationRequest, item: Prepared, result: Any) -> InvocationResponse:
        if isinstance(result, BaseException) and not isinstance(result, TfsError):
            raise result
        if isinstance(result, TfsError):
            status, body = 400, {"error": str(result)}
        else:
            try:
                status, body = 200, self.format_predict(item.payload, result)
            except TfsError as exc:
                status, body = 400, {"error": str(exc)}
        if self.output_handler is not None:
            # The type output_handler expects; only TF workers with handlers need it.
            import requests

            response = requests.models.Response()
            response.status_code = status
            response._content = json_bytes(body)
            response.headers["Content-Type"] = "application/json"
            response.encoding = "utf-8"
            return self._handler_output(self.output_handler(response, item.state), request)
        if status != 200:
            raise InvocationError(status, body["error"])
        payload = json_bytes(body)
        content_type = "application/json"
        if request.accept in ("application/jsonlines", "application/jsons"):
            payload = payload.replace(b"\n", b"")
            content_type = request.accept
        return InvocationResponse(200, payload, content_type)

    def error_response(self, status: int, message: str) -> InvocationResponse:
        return InvocationResponse(status, json_bytes({"error": message}), "application/json")

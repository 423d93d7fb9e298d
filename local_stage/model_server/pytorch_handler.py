"""The PyTorch inference toolkit's semantics (aws/sagemaker-pytorch-inference-toolkit).

``code/<SAGEMAKER_PROGRAM>`` (default ``inference.py``) is imported from the unpacked artifact and
its ``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` (or one ``transform_fn``) are
called exactly as the toolkit calls them, defaults included: ``model_fn`` loads TorchScript only,
``input_fn`` decodes ``application/json``, ``text/csv`` and ``application/x-npy`` by exact content
type (anything else, ``application/json; charset=utf-8`` included, is a 500 as in the container),
``output_fn`` follows ``Accept`` with ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` as the fallback.

Unlike the toolkit, concurrent requests whose ``input_fn`` returned tensors of the same trailing
shape are concatenated and handed to ``predict_fn`` as one batch; the output is split back per
request before ``output_fn``. A ``predict_fn`` whose output cannot be split is detected on the
first batch and batching is switched off for the model (with a warning), never a wrong answer.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from local_stage.errors import LocalStageError
from local_stage.model_server.base import (
    InvocationError,
    InvocationRequest,
    InvocationResponse,
    Prepared,
    ServingHandler,
    import_script,
    json_bytes,
)
from local_stage.model_server.batching import leading_size, merge_key, split_output

log = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
UTF8_TYPES = (JSON, CSV)
_STATUS_TYPES = {
    400: "BadRequestException",
    415: "UnsupportedMediaType",
    500: "InternalServerError",
}


def _unsupported(content_type: str | None) -> InvocationError:
    # The toolkit raises a plain exception here, which the model server turns into a 500.
    return InvocationError(
        500,
        f"Content type {content_type} is not supported by this framework. Please implement "
        "input_fn to deserialize the request data or an output_fn to serialize the response.",
    )


class ServingContext:
    """The subset of TorchServe's ``Context`` that handler functions read."""

    def __init__(self, model_dir: Path, model_name: str) -> None:
        self.model_name = model_name
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.manifest: dict[str, Any] = {"model": {"modelName": model_name}}


def _call(func: Callable[..., Any], context: ServingContext, *args: Any) -> Any:
    """Call a handler function with or without its trailing ``context`` (the toolkit's rule)."""
    n_params = len(inspect.signature(func).parameters)
    if n_params == len(args):
        return func(*args)
    if n_params == len(args) + 1:
        return func(*args, context)
    raise InvocationError(
        500, f"{func.__name__} takes {n_params} arguments but {len(args)} were given"
    )


class PyTorchHandler(ServingHandler):
    flavour = "pytorch"

    def __init__(self, model_dir: Path, env: Mapping[str, str]) -> None:
        import torch  # heavy: only in the worker that serves a PyTorch model

        self._torch = torch
        self.model_dir = model_dir
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)
        self.context = ServingContext(model_dir, "model")
        self.batching_ok = True
        program = env.get("SAGEMAKER_PROGRAM", "inference.py")
        module_name = program[:-3] if program.endswith(".py") else program
        code_dir = model_dir / "code"
        script = code_dir / f"{module_name}.py"
        module = None
        if script.is_file():
            if (code_dir / "requirements.txt").is_file():
                log.warning(
                    "code/requirements.txt is not installed here (the container pip-installs it "
                    "at start-up); install its packages into this venv if needed"
                )
            try:
                module = import_script(script, [code_dir])
            except Exception as exc:
                raise LocalStageError(
                    f"importing {script} failed: {type(exc).__name__}: {exc}"
                ) from exc
        else:
            log.warning("no code/%s in the artifact: using the toolkit's default handlers", program)
        fns = {
            name: getattr(module, name, None)
            for name in ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
        }
        if fns["transform_fn"] and (fns["input_fn"] or fns["predict_fn"] or fns["output_fn"]):
            raise LocalStageError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                f"and/or output_fn implementation (in code/{program}): define one or the other"
            )
        self.transform_fn = fns["transform_fn"]
        self.model_fn = fns["model_fn"] or self.default_model_fn
        self.input_fn = fns["input_fn"] or self.default_input_fn
        self.predict_fn = fns["predict_fn"] or self.default_predict_fn
        self.output_fn = fns["output_fn"] or self.default_output_fn
        self.user_functions = sorted(k for k, v in fns.items() if v is not None)
        self.module = module  # the imported script (None: the toolkit's defaults only)
        try:
            self.model = _call(self.model_fn, self.context, str(model_dir))
        except LocalStageError:
            raise
        except Exception as exc:
            raise LocalStageError(f"model_fn failed: {type(exc).__name__}: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        return {"flavour": self.flavour, "user_functions": self.user_functions}

    # ---- the toolkit's defaults ----

    def default_model_fn(self, model_dir: str) -> Any:
        torch = self._torch
        path = Path(model_dir) / "model.pt"
        if not path.exists():
            files = sorted(p.name for p in Path(model_dir).iterdir() if p.suffix in (".pt", ".pth"))
            if len(files) != 1:
                raise LocalStageError(
                    f"Exactly one .pth or .pt file is required for PyTorch models: {files}"
                )
            path = Path(model_dir) / files[0]
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise LocalStageError(
                f"Failed to load {path.name}. Please ensure model is saved using torchscript "
                "(the default model_fn loads TorchScript only; a state_dict needs a model_fn in "
                "code/inference.py)."
            ) from exc

    def default_input_fn(self, input_data: Any, content_type: str | None) -> Any:
        torch = self._torch
        if content_type == JSON:
            array = np.array(json.loads(input_data))
        elif content_type == CSV:
            array = np.genfromtxt(io.StringIO(input_data), delimiter=",")
        elif content_type == NPY:
            array = np.load(io.BytesIO(input_data), allow_pickle=False)
        else:
            raise _unsupported(content_type)
        if content_type in UTF8_TYPES:
            return torch.FloatTensor(array)
        return torch.from_numpy(array)

    def default_predict_fn(self, data: Any, model: Any) -> Any:
        with self._torch.no_grad():
            model.eval()
            return model(data)

    def default_output_fn(self, prediction: Any, accept: str) -> Any:
        if isinstance(prediction, self._torch.Tensor):
            prediction = prediction.detach().cpu().numpy().tolist()
        for content_type in (part.strip() for part in accept.split(",")):
            if content_type == JSON:
                return json.dumps(prediction, default=_tolist)
            if content_type == CSV:
                text = io.StringIO()
                np.savetxt(text, np.asarray(prediction), delimiter=",", fmt="%s")
                return text.getvalue().encode("utf-8")
            if content_type == NPY:
                binary = io.BytesIO()
                np.save(binary, np.asarray(prediction))
                return binary.getvalue()
        raise _unsupported(accept)

    # ---- the three steps ----

    def _accept(self, request: InvocationRequest) -> str:
        accept = request.accept
        return self.default_accept if not accept or accept == ANY else accept

    def prepare(self, request: InvocationRequest) -> Prepared:
        body: Any = request.body
        if request.content_type in UTF8_TYPES:
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvocationError(500, f"request body is not UTF-8: {exc}") from exc
        if self.transform_fn is not None:
            payload = (body, request.content_type, self._accept(request))
            return Prepared(payload=payload, run_alone=True)
        data = _call(self.input_fn, self.context, body, request.content_type)
        batchable = (
            isinstance(data, self._torch.Tensor | np.ndarray) and leading_size(data) is not None
        )
        return Prepared(payload=data, batchable=batchable)

    def _predict(self, data: Any) -> Any:
        return _call(self.predict_fn, self.context, data, self.model)

    def _concat(self, values: list[Any]) -> Any:
        if isinstance(values[0], np.ndarray):
            return np.concatenate(values, axis=0)
        return self._torch.cat(values, dim=0)

    def run_batch(self, items: list[Prepared]) -> list[Any]:
        results: list[Any] = [None] * len(items)
        groups: dict[tuple[Any, ...], list[int]] = {}
        singles: list[int] = []
        for i, item in enumerate(items):
            if item.run_alone:
                singles.append(i)
            elif item.batchable and self.batching_ok:
                groups.setdefault(merge_key(item.payload), []).append(i)
            else:
                singles.append(i)
        for idxs in groups.values():
            if len(idxs) == 1:
                singles.extend(idxs)
                continue
            sizes = [leading_size(items[i].payload) or 0 for i in idxs]
            try:
                output = self._predict(self._concat([items[i].payload for i in idxs]))
            except Exception:
                # One bad request must not fail its batch-mates: run them one by one.
                log.debug("batched predict_fn failed; retrying %d requests singly", len(idxs))
                singles.extend(idxs)
                continue
            parts = split_output(output, sizes)
            if parts is None:
                self.batching_ok = False
                log.warning(
                    "predict_fn's output for a batch of %d cannot be split per request "
                    "(type %s); batching is off for this model",
                    sum(sizes),
                    type(output).__name__,
                )
                singles.extend(idxs)
                continue
            for i, part in zip(idxs, parts, strict=True):
                results[i] = part
        for i in singles:
            item = items[i]
            try:
                if item.run_alone:
                    body, content_type, accept = item.payload
                    results[i] = _call(
                        self.transform_fn,  # type: ignore[arg-type]
                        self.context,
                        self.model,
                        body,
                        content_type,
                        accept,
                    )
                else:
                    results[i] = self._predict(item.payload)
            except Exception as exc:
                results[i] = exc
        return results

    def finish(self, request: InvocationRequest, item: Prepared, result: Any) -> InvocationResponse:
        if isinstance(result, BaseException):
            raise result
        accept = self._accept(request)
        out = result if item.run_alone else _call(self.output_fn, self.context, result, accept)
        response_type = accept
        if isinstance(out, tuple):
            out, response_type = out[0], out[1]
        if isinstance(out, str):
            out = out.encode("utf-8")
        elif not isinstance(out, bytes | bytearray):
            raise InvocationError(
                500,
                f"output_fn returned {type(out).__name__}; it must return bytes or str "
                "(optionally with a content type, as a tuple)",
            )
        return InvocationResponse(200, bytes(out), response_type)

    def error_response(self, status: int, message: str) -> InvocationResponse:
        body = {
            "code": status,
            "type": _STATUS_TYPES.get(status, "ServiceException"),
            "message": message,
        }
        return InvocationResponse(status, json_bytes(body), "application/json")


def _tolist(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")

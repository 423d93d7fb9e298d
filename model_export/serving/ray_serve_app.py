"""The Ray Serve application of a PyTorch artifact: SageMaker's PyTorch handler contract on Serve.

This file is the artifact's ``code/serve_app.py``; ``config.yaml`` at the artifact's root names it
(``import_path: serve_app:app``). AWS's Ray Serve container (aws/deep-learning-containers
``scripts/docker/ray/``) puts ``/opt/ml/model`` and ``/opt/ml/model/code`` on ``PYTHONPATH``, runs
``serve run /opt/ml/model/config.yaml`` with Serve's HTTP port on 8000, and forwards each
``POST /invocations`` to this application's route ``/`` with the request's body, ``Content-Type``,
``Accept`` and ``X-Amzn-SageMaker-*`` headers. The local stage and ``model_export verify`` run the
same file the same way.

The handler contract is the one SageMaker PyTorch users know (sagemaker-pytorch-inference-toolkit):
``code/<SAGEMAKER_PROGRAM>`` (default ``inference.py``) may define ``model_fn(model_dir)``,
``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``,
each with an optional trailing ``context``, or one ``transform_fn(model, body, content_type,
accept)``; what it leaves out gets the toolkit's defaults (TorchScript ``model.pt``/``.pth``, JSON /
CSV / ``.npy``). ``application/json`` and ``text/csv`` bodies reach ``input_fn`` as ``str``.

Batching: ``input_fn`` runs per request; requests whose tensors share their trailing shape go to
``predict_fn`` as one batch through Serve's own ``@serve.batch``, and the output is split back per
request for ``output_fn``. A request that arrives while the replica has nothing else in flight is
not held for the batch window (the window is zero for it), so one client sees a plain forward. A
``predict_fn`` whose output cannot be split switches batching off for the model (with a warning),
never a wrong answer; a batch that fails is retried request by request so one bad input fails
only its own request.

Errors: an exception with an integer ``status_code`` (400-599) answers that status, anything else
from the handlers 500, as JSON ``{"code", "type", "message"}``.

Only the standard library, numpy, torch, starlette and ray are imported: what the container ships
(``model_export`` checks artifacts against that list). Runs on Python 3.11-3.13.

Size: one file, over the size the rest of the project keeps to, on purpose: it is copied into every
artifact as ``code/serve_app.py`` and imported by Serve inside AWS's container as one module
(``import_path: serve_app:app``), beside the user's own ``code/`` modules. Split into several
modules, each would be a top-level name in that shared ``code/`` folder that a user's module
could shadow, and the export, the manifest and the container checks would have to ship and
verify them all. In order: errors, loading the user's script, splitting batches, the handlers
(the contract and its defaults), step placement, and the Serve deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

log = logging.getLogger("ray.serve")

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
UTF8_TYPES = (JSON, CSV)
STATUS_TYPES = {
    400: "BadRequestException",
    404: "NotFoundException",
    406: "NotAcceptableException",
    413: "PayloadTooLargeException",
    415: "UnsupportedMediaType",
    500: "InternalServerError",
    503: "ServiceUnavailableException",
    504: "GatewayTimeoutException",
}
DEFAULT_MODEL_DIR = "/opt/ml/model"


class HandlerError(Exception):
    """A request answered with an HTTP error status (``status_code``), as the toolkit does."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def error_status(exc: BaseException) -> int:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        return status
    return 500


def error_body(status: int, message: str) -> bytes:
    body = {
        "code": status,
        "type": STATUS_TYPES.get(status, "ServiceException"),
        "message": message,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _unsupported(content_type: Any) -> HandlerError:
    # The toolkit raises a plain exception here, which its model server turns into a 500.
    return HandlerError(
        500,
        f"Content type {content_type} is not supported by this framework. Please implement "
        "input_fn to deserialize the request data or an output_fn to serialize the response.",
    )


class ServingContext:
    """The subset of the toolkit's ``Context`` that handler functions read."""

    def __init__(self, model_dir: str, model_name: str = "model") -> None:
        self.model_name = model_name
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.manifest: dict[str, Any] = {"model": {"modelName": model_name}}


def _call(func: Any, context: ServingContext, *args: Any) -> Any:
    """Call a handler function with or without its trailing ``context`` (the toolkit's rule)."""
    n_params = len(inspect.signature(func).parameters)
    if n_params == len(args):
        return func(*args)
    if n_params == len(args) + 1:
        return func(*args, context)
    raise HandlerError(
        500, f"{func.__name__} takes {n_params} arguments but {len(args)} were given"
    )


def import_script(path: str, code_dir: str) -> Any:
    """Import ``code/<program>`` under a name unique to its path (several artifacts, one process)."""
    # This file runs inside AWS's Ray Serve container, where the project is not installed: the
    # artifact's code/ folder is the import root of its handler script and the script's helpers.
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:16]
    name = f"_artifact_{os.path.basename(path)[:-3]}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
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


def leading_size(value: Any) -> int | None:
    """The batch dimension of a tensor/array of 2+ dimensions (1-D inputs are never merged)."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return int(shape[0])


def merge_key(value: Any) -> tuple[Any, ...]:
    return (type(value).__name__, str(getattr(value, "dtype", "")), tuple(value.shape[1:]))


def split_output(output: Any, sizes: list[int]) -> list[Any] | None:
    """Split a batched output back per request (tensor/array, list/tuple, or a dict of them)."""
    total = sum(sizes)
    if isinstance(output, dict):
        parts = {k: split_output(v, sizes) for k, v in output.items()}
        if not parts or any(p is None for p in parts.values()):
            return None
        return [{k: p[i] for k, p in parts.items()} for i in range(len(sizes))]  # type: ignore[index]
    shape = getattr(output, "shape", None)
    if shape is not None and len(shape) >= 1 and int(shape[0]) == total:
        pieces, start = [], 0
        for n in sizes:
            pieces.append(output[start : start + n])
            start += n
        return pieces
    if isinstance(output, list | tuple) and len(output) == total:
        pieces, start = [], 0
        for n in sizes:
            pieces.append(type(output)(output[start : start + n]))
            start += n
        return pieces
    return None


class Prepared:
    __slots__ = ("payload", "batchable", "alone")

    def __init__(self, payload: Any, batchable: bool = False, alone: bool = False) -> None:
        self.payload = payload
        self.batchable = batchable
        self.alone = alone


class Handlers:
    """The toolkit's handler contract around one loaded model, with no server around it.

    ``prepare(body, content_type, accept)`` -> ``Prepared`` (``input_fn``), ``run_batch([...])``
    -> one result or exception per item (``predict_fn`` once for what can share a call, or
    ``transform_fn``), ``finish(prepared, result, accept)`` -> ``(body, content_type)``
    (``output_fn``). ``model_export`` calls these in-process; the Serve deployment below calls them
    per request and per batch.
    """

    def __init__(self, model_dir: str, env: dict[str, str] | None = None) -> None:
        import torch

        env = dict(os.environ if env is None else env)
        self._torch = torch
        self.model_dir = model_dir
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)
        self.context = ServingContext(model_dir)
        self.batching_ok = True
        program = env.get("SAGEMAKER_PROGRAM", "inference.py")
        if not program.endswith(".py"):
            program += ".py"
        code_dir = os.path.join(model_dir, "code")
        script = os.path.join(code_dir, program)
        module = None
        if os.path.isfile(script):
            module = import_script(script, code_dir)
        else:
            log.warning("no code/%s in the artifact: using the toolkit's default handlers", program)
        fns = {
            name: getattr(module, name, None)
            for name in ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
        }
        if fns["transform_fn"] and (fns["input_fn"] or fns["predict_fn"] or fns["output_fn"]):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                f"and/or output_fn implementation (in code/{program}): define one or the other"
            )
        self.module = module
        self.transform_fn = fns["transform_fn"]
        self.model_fn = fns["model_fn"] or self.default_model_fn
        self.input_fn = fns["input_fn"] or self.default_input_fn
        self.predict_fn = fns["predict_fn"] or self.default_predict_fn
        self.output_fn = fns["output_fn"] or self.default_output_fn
        self.user_functions = sorted(k for k, v in fns.items() if v is not None)
        self.model = _call(self.model_fn, self.context, model_dir)

    # ---- the toolkit's defaults ----

    def default_model_fn(self, model_dir: str) -> Any:
        path = os.path.join(model_dir, "model.pt")
        if not os.path.exists(path):
            files = sorted(f for f in os.listdir(model_dir) if f.endswith((".pt", ".pth")))
            if len(files) != 1:
                raise ValueError(
                    f"Exactly one .pth or .pt file is required for PyTorch models: {files}"
                )
            path = os.path.join(model_dir, files[0])
        try:
            return self._torch.jit.load(path, map_location="cpu")
        except RuntimeError as exc:
            raise ValueError(
                f"Failed to load {os.path.basename(path)}. Please ensure model is saved using "
                "torchscript (the default model_fn loads TorchScript only; a state_dict needs a "
                "model_fn in code/inference.py)."
            ) from exc

    def default_input_fn(self, input_data: Any, content_type: Any) -> Any:
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

    def accept_of(self, accept: str | None) -> str:
        return self.default_accept if not accept or accept == ANY else accept

    def prepare(self, body: bytes, content_type: str | None, accept: str | None) -> Prepared:
        data: Any = body
        if content_type in UTF8_TYPES:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HandlerError(500, f"request body is not UTF-8: {exc}") from exc
        if self.transform_fn is not None:
            return Prepared((data, content_type, self.accept_of(accept)), alone=True)
        value = _call(self.input_fn, self.context, data, content_type)
        batchable = (
            isinstance(value, self._torch.Tensor | np.ndarray) and leading_size(value) is not None
        )
        return Prepared(value, batchable=batchable)

    def on_gpu(self) -> bool:
        """Whether the model's work runs on a GPU (then the replica's cores are free)."""
        return bool(self._torch.cuda.is_available())

    def _predict(self, data: Any) -> Any:
        return _call(self.predict_fn, self.context, data, self.model)

    def _concat(self, values: list[Any]) -> Any:
        if isinstance(values[0], np.ndarray):
            return np.concatenate(values, axis=0)
        return self._torch.cat(values, dim=0)

    def run_batch(self, items: list[Prepared]) -> list[Any]:
        """One result per item, in order; a failed item's result is its exception."""
        results: list[Any] = [None] * len(items)
        groups: dict[tuple[Any, ...], list[int]] = {}
        singles: list[int] = []
        for i, item in enumerate(items):
            if item.batchable and self.batching_ok and not item.alone:
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
                singles.extend(idxs)
                continue
            parts = split_output(output, sizes)
            if parts is None:
                self.batching_ok = False
                log.warning(
                    "predict_fn's output for a batch of %d cannot be split per request (type %s); "
                    "batching is off for this model",
                    sum(sizes),
                    type(output).__name__,
                )
                singles.extend(idxs)
                continue
            for i, part in zip(idxs, parts, strict=True):
                results[i] = part
        for i in sorted(singles):
            item = items[i]
            try:
                if item.alone:
                    body, content_type, accept = item.payload
                    results[i] = _call(
                        self.transform_fn, self.context, self.model, body, content_type, accept
                    )
                else:
                    results[i] = self._predict(item.payload)
            except Exception as exc:
                results[i] = exc
        return results

    def finish(self, item: Prepared, result: Any, accept: str | None) -> tuple[bytes, str]:
        if isinstance(result, BaseException):
            raise result
        accept = self.accept_of(accept)
        out = result if item.alone else _call(self.output_fn, self.context, result, accept)
        response_type = accept
        if isinstance(out, tuple):
            out, response_type = out[0], out[1]
        if isinstance(out, str):
            out = out.encode("utf-8")
        elif not isinstance(out, bytes | bytearray):
            raise HandlerError(
                500,
                f"output_fn returned {type(out).__name__}; it must return bytes or str "
                "(optionally with a content type, as a tuple)",
            )
        return bytes(out), response_type

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[int, bytes, str]:
        """One request start to end, in this thread: ``(status, body, content_type)``."""
        try:
            item = self.prepare(body, content_type, accept)
            (result,) = self.run_batch([item])
            out, response_type = self.finish(item, result, accept)
            return 200, out, response_type
        except Exception as exc:
            status = error_status(exc)
            return status, error_body(status, _message(exc)), JSON


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    return f"{type(exc).__name__}: {exc}" if error_status(exc) == 500 else str(exc)


def _tolist(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _no_clock() -> float:
    return 0.0


class StepPlacement:
    """Where a replica runs a per-request step (``input_fn``, ``output_fn``): its loop or a pool.

    A thread of its own pays only where there is a core to run it. On a CPU instance the model's
    intra-op threads already take every core of the replica, and decoding in a pool beside them
    only makes the threads fight: measured here (2 vCPUs, 32 clients), running both steps on the
    event loop served 27% more requests/s on the digits model and 10-20% more on ResNet-18 than
    a pool of 4 threads (1 or 2 threads did no better). With the model on a GPU
    (``spare_cores``) the replica's cores are free for decoding in parallel, so a step goes to the
    pool once its average CPU time reaches ``inline_cpu_s``. Either way, a step that holds the
    loop longer than ``blocking_wall_s`` on average (a handler sleeping or waiting on a file, very
    large inputs) goes to the pool for good, so the replica's other requests and Serve's health
    checks are not held up. Costs are averages (exponentially weighted) that leave out a step's
    first call, and are CPU time, so waiting for the GIL while a batch runs does not count.
    """

    def __init__(
        self,
        spare_cores: bool,
        inline_cpu_s: float = 0.001,
        blocking_wall_s: float = 0.05,
        weight: float = 0.2,
    ) -> None:
        self.spare_cores = spare_cores
        self.inline_cpu_s = inline_cpu_s
        self.blocking_wall_s = blocking_wall_s
        self.weight = weight
        self._calls: dict[str, int] = {}
        self._cpu_s: dict[str, float] = {}
        self._wall_s: dict[str, float] = {}
        self._pooled_for_good: set[str] = set()

    def inline(self, name: str) -> bool:
        if name in self._pooled_for_good:
            return False
        if not self.spare_cores:
            return True
        cost = self._cpu_s.get(name)
        return cost is not None and cost < self.inline_cpu_s

    def timed(self, name: str, on_loop: bool, fn: Any, *args: Any) -> Any:
        # The thread's CPU clock is a system call (~0.4 µs here, ~8% of a replica's samples on
        # the digits model): read only where the placement depends on it.
        cpu_clock = time.thread_time if self.spare_cores else _no_clock
        wall, cpu = time.perf_counter(), cpu_clock()
        try:
            return fn(*args)
        finally:
            self.note(name, cpu_clock() - cpu, time.perf_counter() - wall, on_loop)

    def note(self, name: str, cpu_s: float, wall_s: float, on_loop: bool) -> None:
        calls = self._calls.get(name, 0) + 1
        self._calls[name] = calls
        if calls == 1:
            return  # a step's first call pays one-off costs (imports, caches): not its cost
        self._cpu_s[name] = self._average(self._cpu_s.get(name), cpu_s)
        if not on_loop:
            return
        wall = self._wall_s[name] = self._average(self._wall_s.get(name), wall_s)
        if wall > self.blocking_wall_s and name not in self._pooled_for_good:
            self._pooled_for_good.add(name)
            log.warning(
                "%s holds the replica's event loop for %.0f ms a call: it runs in a thread "
                "from now on",
                name,
                wall * 1000,
            )

    def _average(self, previous: float | None, value: float) -> float:
        return value if previous is None else previous + self.weight * (value - previous)


# ---------------------------------------------------------------------------------------------
# The Serve deployment
# ---------------------------------------------------------------------------------------------

from ray import serve  # noqa: E402  (the handler contract above runs without a Ray cluster)
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402


@serve.deployment(max_ongoing_requests=32)
class SageMakerHandlers:
    """Serves ``Handlers`` on route ``/``; ``user_config`` sets the batch size and window."""

    def __init__(self) -> None:
        model_dir = os.environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR)
        # One model thread: predict_fn runs off the event loop, so requests keep being decoded
        # while a batch runs, and batches never overlap on the model. model_fn runs there too:
        # torch's CPU ops run on OpenMP, and once two threads of a process have run parallel ops
        # there are more OpenMP threads than cores and libgomp stops spinning between ops: a
        # ResNet-18 forward went from 14 to 19 ms here (2 vCPUs) after a single op elsewhere.
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="predict_fn")
        self.handlers = self._model_thread.submit(Handlers, model_dir).result()
        # input_fn/output_fn run on the event loop or in a pool of their own (StepPlacement).
        self._io_threads = ThreadPoolExecutor(4, thread_name_prefix="input_output_fn")
        self._placement = StepPlacement(spare_cores=self.handlers.on_gpu())
        torch = self.handlers._torch
        log.info(
            "model ready: torch %s on %s, %d intra-op threads (OMP_NUM_THREADS=%s), handlers: %s",
            torch.__version__,
            "GPU" if self._placement.spare_cores else "CPU",
            torch.get_num_threads(),
            os.environ.get("OMP_NUM_THREADS", "unset"),
            ", ".join(self.handlers.user_functions) or "the toolkit's defaults",
        )
        self._batch_wait_s = 0.0
        self._in_flight = 0

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        max_batch_size = int(user_config.get("max_batch_size", 1))
        wait_s = float(user_config.get("batch_wait_timeout_s", 0.0))
        if max_batch_size < 1 or wait_s < 0:
            raise ValueError(
                f"user_config: max_batch_size must be >= 1 and batch_wait_timeout_s >= 0, got "
                f"{max_batch_size} and {wait_s}"
            )
        # Ray 2.57's serve.batch overloads return a plain Callable, though the method it returns
        # carries set_max_batch_size / set_batch_wait_timeout_s (documented in serve.batch).
        self._predict_batch.set_max_batch_size(max_batch_size)  # type: ignore[attr-defined]
        self._batch_wait_s = wait_s

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _predict_batch(self, items: list[Prepared]) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self.handlers.run_batch, items)

    async def _step(self, fn: Any, *args: Any) -> Any:
        name = fn.__name__
        if self._placement.inline(name):
            return self._placement.timed(name, True, fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._io_threads, self._placement.timed, name, False, fn, *args
        )

    async def __call__(self, request: Request) -> Response:
        self._in_flight += 1
        try:
            body = await request.body()
            content_type = request.headers.get("content-type")
            accept = request.headers.get("accept")
            try:
                item = await self._step(self.handlers.prepare, body, content_type, accept)
                # Hold a request for the batch window only when others are in flight here: a
                # lone request would otherwise wait out the window for batch-mates that never come.
                alone = self._in_flight == 1
                wait_s = 0.0 if alone else self._batch_wait_s
                # serve.batch's stub omits this setter (see reconfigure).
                self._predict_batch.set_batch_wait_timeout_s(wait_s)  # type: ignore[attr-defined]
                result = await self._predict_batch(item)
                out, response_type = await self._step(self.handlers.finish, item, result, accept)
            except Exception as exc:
                status = error_status(exc)
                if status >= 500:
                    log.exception("invocation failed (%d)", status)
                return Response(error_body(status, _message(exc)), status, media_type=JSON)
            return Response(out, 200, media_type=response_type)
        finally:
            self._in_flight -= 1


# mypy keeps a decorated class's own type (it does not apply a class decorator's return type):
# @serve.deployment has made SageMakerHandlers a Deployment.
app = cast(serve.Deployment, SageMakerHandlers).bind()

"""SageMaker PyTorch serving handlers for an image classifier exported by ``model_export``.

This file is the artifact's ``code/inference.py``. The artifact's Ray Serve application
(``code/serve_app.py``, SageMaker PyTorch's handler contract on AWS's Ray Serve container) imports
it and calls::

    model = model_fn(model_dir)                       # once, at start-up
    data = input_fn(request_body, content_type)       # decode one request
    prediction = predict_fn(data, model)              # run the model
    body, content_type = output_fn(prediction, accept)  # encode one response

Each function also accepts the toolkit's trailing ``context`` argument (passed when the signature
has room for it). Serving needs only the standard library, torch, numpy and
Pillow; the architecture comes from ``torch_models.py`` beside this file and the rest from
``<model_dir>/model_config.json``.

Batching contract (the Serve application batches several requests into one ``predict_fn`` call):

- ``input_fn`` returns a ``torch.float32`` tensor of shape ``(n, 3, S, S)`` with ``n >= 1``: the
  request's images, already preprocessed (RGB, resized to S x S, scaled to [0, 1], normalised
  with the training mean/std, channels first). One request may carry several images.
- ``predict_fn`` accepts any such tensor ``(B, 3, S, S)``: the application may ``torch.cat`` the
  ``input_fn`` outputs of several requests along dimension 0. It returns a ``torch.float32``
  tensor ``(B, K)`` of class probabilities (softmax) on the CPU, row ``i`` belonging to input
  row ``i``. The model runs on the GPU when there is one.
- ``output_fn`` takes the rows that belong to one request (``prediction[start:start + n]``)
  and encodes them for that request's ``Accept``; it returns ``(body_bytes, content_type)``.

Request content types:

- ``application/json``: ``{"instances": [x, ...]}`` where each ``x`` is either
  ``{"b64": "<base64 JPEG/PNG bytes>"}`` or a preprocessed ``3 x S x S`` nested list; or a bare
  ``3 x S x S`` / ``n x 3 x S x S`` nested list (the toolkit's default JSON form).
- ``image/jpeg``, ``image/png`` (and ``application/x-image``): the raw bytes of one image.
- ``application/x-npy``: a float array ``3 x S x S`` or ``n x 3 x S x S`` (``numpy.save``),
  already preprocessed.

Response (``Accept``): ``application/json`` (also ``*/*`` or none) gives
``{"predictions": [{"label": "7", "probability": 0.98, "probabilities": {"0": ..., ...}}]}``;
``application/x-npy`` gives the ``n x K`` float32 probability array. Bad requests raise an error
carrying an HTTP ``status_code`` (400, 406, 413, 415) that the application turns into the response.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import io
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError


class RequestError(Exception):
    """A request this model cannot serve; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


JSON = "application/json"
NPY = "application/x-npy"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
REQUEST_TYPES = (JSON, *IMAGE_TYPES, NPY)
RESPONSE_TYPES = (JSON, NPY)
# Decoded-image ceiling: a small compressed file can expand to gigabytes of pixels.
MAX_IMAGE_PIXELS = 40_000_000
MAX_INSTANCES = 256

_CONFIG_KEYS = ("arch", "num_classes", "class_names", "image_size", "mean", "std")
# Filled by model_fn; input_fn and output_fn have no model argument in the toolkit's contract.
_STATE: dict = {}


def _load_architecture_module():
    """Import ``torch_models.py`` from beside this file under a name unique to this artifact."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_models.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: the artifact must ship code/torch_models.py")
    name = f"torch_models_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module (no loader for it)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def model_fn(model_dir, context=None):
    """Rebuild the architecture, load ``model.pth`` (a state_dict); the model in eval mode."""
    with open(os.path.join(model_dir, "model_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    missing = [key for key in _CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"model_config.json lacks {', '.join(missing)}")
    if len(config["class_names"]) != config["num_classes"]:
        raise ValueError("model_config.json: class_names does not have num_classes entries")
    model = _load_architecture_module().build_model(config["arch"], int(config["num_classes"]))
    state_dict = torch.load(
        os.path.join(model_dir, "model.pth"), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state_dict)
    # GPU instances (ml.g*) serve on the GPU; CPU instances on the CPU.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    _STATE.update(
        device=device,
        class_names=[str(name) for name in config["class_names"]],
        image_size=int(config["image_size"]),
        mean=np.asarray(config["mean"], dtype=np.float32).reshape(3, 1, 1),
        std=np.asarray(config["std"], dtype=np.float32).reshape(3, 1, 1),
    )
    return model


def _media_type(header) -> str:
    return (header or "").split(";")[0].strip().lower()


def _require_loaded() -> None:
    if not _STATE:
        raise RuntimeError("model_fn has not run: the handlers are called out of order")


def _decode_image(data: bytes) -> np.ndarray:
    """Eval preprocessing, identical to training's: RGB, bilinear resize, /255, normalise, CHW."""
    size = _STATE["image_size"]
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise RequestError(413, f"image is {image.width}x{image.height} pixels; too large")
        image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise RequestError(400, f"the image could not be decoded as JPEG or PNG: {exc}") from exc
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return (pixels.transpose(2, 0, 1) - _STATE["mean"]) / _STATE["std"]


def _from_b64(value) -> np.ndarray:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise RequestError(400, f'"b64" must hold base64-encoded image bytes: {exc}') from exc
    return _decode_image(data)


def _as_batch(array, what: str) -> np.ndarray:
    size = _STATE["image_size"]
    try:
        batch = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RequestError(400, f"{what} is not a numeric array: {exc}") from exc
    if batch.ndim == 3:
        batch = batch[np.newaxis]
    if batch.ndim != 4 or batch.shape[1:] != (3, size, size):
        raise RequestError(
            400,
            f"{what} has shape {list(batch.shape)}; expected [3, {size}, {size}] or "
            f"[n, 3, {size}, {size}] (a preprocessed image, channels first)",
        )
    if not np.isfinite(batch).all():
        raise RequestError(400, f"{what} contains NaN or infinite values")
    return batch


def _from_json(document) -> np.ndarray:
    if isinstance(document, dict) and "b64" in document:
        return _from_b64(document["b64"])[np.newaxis]
    if isinstance(document, dict):
        if "instances" not in document:
            raise RequestError(
                400,
                'JSON requests need {"instances": [...]}: each instance either '
                '{"b64": "<base64 image>"} or a preprocessed 3 x S x S array',
            )
        instances = document["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, '"instances" must be a non-empty list')
        if len(instances) > MAX_INSTANCES:
            raise RequestError(413, f"{len(instances)} instances; at most {MAX_INSTANCES}")
        rows = []
        for i, instance in enumerate(instances):
            if isinstance(instance, dict):
                if "b64" not in instance:
                    raise RequestError(400, f'instance {i} is an object without a "b64" key')
                rows.append(_from_b64(instance["b64"]))
            else:
                rows.append(_as_batch(instance, f"instance {i}")[0])
        return np.stack(rows)
    if isinstance(document, list):
        return _as_batch(document, "the JSON array")
    raise RequestError(400, "the JSON body must be an object or an array")


def input_fn(request_body, request_content_type, context=None):
    """Decode one request into a float32 tensor ``(n, 3, S, S)``; see the module docstring."""
    _require_loaded()
    media_type = _media_type(request_content_type)
    body = request_body.encode("utf-8") if isinstance(request_body, str) else request_body
    if not body:
        raise RequestError(400, "the request body is empty")
    if media_type == JSON:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the body is not valid JSON: {exc}") from exc
        batch = _from_json(document)
    elif media_type in IMAGE_TYPES:
        batch = _decode_image(bytes(body))[np.newaxis]
    elif media_type == NPY:
        try:
            array = np.load(io.BytesIO(bytes(body)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise RequestError(400, f"the body is not a .npy array: {exc}") from exc
        batch = _as_batch(array, "the .npy array")
    else:
        raise RequestError(
            415,
            f"content type {request_content_type!r} is not supported; send one of "
            f"{', '.join(REQUEST_TYPES)}",
        )
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))


def predict_fn(input_data, model, context=None):
    """Class probabilities ``(B, K)`` for a batch ``(B, 3, S, S)`` (one or several requests)."""
    if not isinstance(input_data, torch.Tensor) or input_data.dim() != 4:
        raise TypeError("predict_fn expects a 4-D tensor (batch, 3, S, S) from input_fn")
    device = _STATE.get("device", torch.device("cpu"))
    with torch.inference_mode():
        logits = model(input_data.to(device=device, dtype=torch.float32))
        return torch.softmax(logits, dim=1).cpu()


def _pick_accept(accept) -> str:
    for part in (accept or "").split(","):
        media_type = _media_type(part)
        if media_type in ("", "*/*", "application/*"):
            return JSON
        if media_type in RESPONSE_TYPES:
            return media_type
    raise RequestError(
        406, f"Accept {accept!r} is not supported; accept one of {', '.join(RESPONSE_TYPES)}"
    )


def output_fn(prediction, accept, context=None):
    """Encode one request's rows of ``predict_fn``'s output; returns ``(body, content_type)``."""
    _require_loaded()
    media_type = _pick_accept(accept)
    if isinstance(prediction, torch.Tensor):
        prediction = prediction.detach().cpu().numpy()
    probabilities = np.asarray(prediction, dtype=np.float32)
    if media_type == NPY:
        buffer = io.BytesIO()
        np.save(buffer, probabilities, allow_pickle=False)
        return buffer.getvalue(), NPY
    names = _STATE["class_names"]
    predictions = []
    for row in probabilities:
        best = int(np.argmax(row))
        predictions.append(
            {
                "label": names[best],
                "probability": float(row[best]),
                "probabilities": {name: float(p) for name, p in zip(names, row, strict=True)},
            }
        )
    return json.dumps({"predictions": predictions}).encode("utf-8"), JSON

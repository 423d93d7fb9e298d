"""SageMaker TensorFlow Serving pre/post-processing for a classifier exported by ``model_export``.

This file is the artifact's ``code/inference.py``. The TF Serving container's Python front end
calls ``input_handler(data, context)``, POSTs what it returns to TF Serving's REST predict API
(``context.rest_uri``) and hands the response to ``output_handler(response, context)``, which
returns ``(body_bytes, content_type)``. Standard library only: the container's Python has little
else. The class names come from ``model_config.json`` beside this file.

The SavedModel's ``serving_default`` signature takes ``image_bytes`` (a batch of encoded JPEG/PNG
images; TF Serving's JSON carries them as ``{"b64": "..."}``) for image models, or ``text`` (a batch
of strings) for text models, and returns ``probabilities`` (batch x classes) and ``label``.
Image models also have a ``pixels`` signature taking ``image``, float32 ``[n, S, S, 3]`` in
[0, 255]; select it with ``"signature_name": "pixels"``.

Requests:

- ``application/json``: TF Serving's own format (``{"instances": ...}``, ``{"inputs": ...}``, with
  an optional ``signature_name``) passes through unchanged; a bare list becomes the instances; a
  single ``{"b64": ...}`` object or string becomes one instance.
- ``image/jpeg``, ``image/png``, ``application/x-image`` (image models): the raw bytes of one image.
- ``text/plain`` (text models): the whole body (UTF-8) is one text.

Response (``Accept`` ``application/json``, ``*/*`` or none):
``{"predictions": [{"label": ..., "probability": ..., "probabilities": {name: p, ...}}]}``.
"""

import base64
import json
import os

try:  # In the container, falcon errors propagate with their own HTTP status (not a 500).
    import falcon
except ImportError:
    falcon = None

JSON = "application/json"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
TEXT = "text/plain"


class RequestError(Exception):
    """A request this model cannot serve; ``status_code`` is the HTTP status to answer with."""

    def __init__(self, status_code, message):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _fail(status_code, message):
    if falcon is not None:
        status = getattr(falcon, f"HTTP_{status_code}", falcon.HTTP_500)
        raise falcon.HTTPError(status, description=message)
    raise RequestError(status_code, message)


def _load_config():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_config.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


_CONFIG = _load_config()
_CLASS_NAMES = [str(name) for name in _CONFIG["class_names"]]
_TASK = _CONFIG["task"]


def _media_type(header):
    return (header or "").split(";")[0].strip().lower()


def _check_accept(accept):
    for part in (accept or "").split(","):
        if _media_type(part) in ("", "*/*", "application/*", JSON):
            return
    _fail(406, f"Accept {accept!r} is not supported; accept {JSON}")


def input_handler(data, context):
    """Turn one request into a TF Serving REST predict body (a JSON string)."""
    _check_accept(context.accept_header)
    media_type = _media_type(context.request_content_type)
    body = data.read()
    if not body:
        _fail(400, "the request body is empty")
    if media_type == JSON:
        try:
            document = json.loads(body)
        except ValueError as exc:
            _fail(400, f"the body is not valid JSON: {exc}")
        if isinstance(document, dict) and (
            "instances" in document or "inputs" in document or "examples" in document
        ):
            request = document
        elif isinstance(document, list):
            request = {"instances": document}
        elif isinstance(document, str) or (isinstance(document, dict) and "b64" in document):
            request = {"instances": [document]}
        else:
            _fail(
                400,
                'JSON requests need {"instances": [...]} (TF Serving format), a list of '
                'instances, or one instance ({"b64": "<base64 image>"} or a text string)',
            )
    elif media_type in IMAGE_TYPES:
        if _TASK != "image-classification":
            _fail(415, f"this is a {_TASK} model; send text as {TEXT} or {JSON}")
        request = {"instances": [{"b64": base64.b64encode(body).decode("ascii")}]}
    elif media_type == TEXT:
        if _TASK != "text-classification":
            _fail(415, f"this is a {_TASK} model; send images as image/jpeg, image/png or {JSON}")
        try:
            request = {"instances": [body.decode("utf-8")]}
        except UnicodeDecodeError as exc:
            _fail(400, f"text/plain bodies must be UTF-8: {exc}")
    else:
        supported = [JSON, *(IMAGE_TYPES if _TASK == "image-classification" else (TEXT,))]
        _fail(
            415,
            f"content type {context.request_content_type!r} is not supported; send one of "
            f"{', '.join(supported)}",
        )
    return json.dumps(request)


def _rows(document):
    """``(probabilities, labels)`` per instance from a row- or column-format TF Serving reply."""
    if "predictions" in document:
        rows = document["predictions"]
        if rows and isinstance(rows[0], dict):
            return [row["probabilities"] for row in rows], [row.get("label") for row in rows]
        return rows, [None] * len(rows)
    outputs = document.get("outputs")
    if isinstance(outputs, dict):
        probabilities = outputs["probabilities"]
        return probabilities, outputs.get("label") or [None] * len(probabilities)
    return outputs, [None] * len(outputs)


def output_handler(response, context):
    """Map TF Serving's reply to labels and probabilities; returns ``(body, content_type)``."""
    if response.status_code != 200:
        _fail(response.status_code, response.content.decode("utf-8", "replace"))
    document = json.loads(response.content)
    probabilities, labels = _rows(document)
    predictions = []
    for row, label in zip(probabilities, labels, strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "label": label if isinstance(label, str) else _CLASS_NAMES[best],
                "probability": float(row[best]),
                "probabilities": {
                    name: float(p) for name, p in zip(_CLASS_NAMES, row, strict=True)
                },
            }
        )
    return json.dumps({"predictions": predictions}).encode("utf-8"), JSON

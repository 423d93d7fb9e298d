"""Keras model -> ``model.tar.gz`` for the SageMaker TensorFlow Serving container.

Tarball layout (unpacked into ``/opt/ml/model``)::

    <name>/<version>/saved_model.pb, variables/    (or export/Servo/<version>/ with --layout servo)
    code/inference.py                             input_handler / output_handler (optional)
    code/model_config.json                        class names and task, read by inference.py
    manifest.json

Signatures (written with ``tf.saved_model.save`` and explicit ``tf.function`` signatures, so the
input and output names, and hence TF Serving's JSON, are stable):

- image models: ``serving_default``: ``image_bytes`` string ``[n]`` (encoded JPEG/PNG; decoded,
  resized to S x S with bilinear interpolation, as ``keras.utils.image_dataset_from_directory``
  does) and ``pixels``: ``image`` float32 ``[n, S, S, 3]`` in [0, 255];
- text models: ``serving_default``: ``text`` string ``[n]``;
- outputs, always: ``probabilities`` float32 ``[n, classes]`` and ``label`` string ``[n]``.

The SavedModel bytes are reproducible across runs in fresh processes (same model in, same files
out) except ``fingerprint.pb``'s random ``uuid``, which is cleared.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from contracts.frameworks import SERVING
from model_export import manifest as manifest_lib
from model_export.common import (
    ExportResult,
    check_class_names,
    check_name_version,
    copy_file,
    finish,
    python_version,
    read_json,
    read_metrics,
)
from model_export.errors import ExportError
from model_export.preprocess import DEFAULT_EXAMPLE_TEXT, decode_rgb, example_png

log = logging.getLogger(__name__)

SERVING_SCRIPT = Path(__file__).parent / "serving" / "tfs_inference.py"
TASKS = ("image-classification", "text-classification")


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "model_config.json"
    config = read_json(path, "training writes it beside the model (task, class_names, ...)")
    if not isinstance(config, dict):
        raise ExportError(f"{path} must hold a JSON object")
    if config.get("framework", "tensorflow") != "tensorflow":
        raise ExportError(
            f"{path} says framework {config.get('framework')!r}; use `python -m model_export "
            "pytorch` for PyTorch models"
        )
    if config.get("task") not in TASKS:
        raise ExportError(f"{path}: task must be one of {', '.join(TASKS)}")
    check_class_names(config, path)
    return config


def load_keras_model(model_dir: Path, architecture_json: Path | None, weights_h5: Path | None):
    """``model.keras``, or the older architecture JSON + HDF5 weights."""
    import keras

    if (architecture_json is None) != (weights_h5 is None):
        raise ExportError("--architecture-json and --weights-h5 go together: give both or neither")
    if architecture_json is not None and weights_h5 is not None:
        for path in (architecture_json, weights_h5):
            if not path.is_file():
                raise ExportError(f"{path} does not exist")
        try:
            model = keras.models.model_from_json(architecture_json.read_text(encoding="utf-8"))
        except Exception as exc:
            raise ExportError(
                f"{architecture_json} is not a Keras architecture JSON this Keras "
                f"({keras.__version__}) can rebuild: {exc}"
            ) from exc
        try:
            model.load_weights(str(weights_h5))
        except Exception as exc:
            raise ExportError(f"{weights_h5} does not fit {architecture_json}: {exc}") from exc
        return model
    path = model_dir / "model.keras"
    if not path.is_file():
        raise ExportError(
            f"{path} is missing: training saves model.keras there (older models: pass "
            "--architecture-json and --weights-h5)"
        )
    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:
        raise ExportError(f"{path} could not be loaded: {exc}") from exc


def _image_size(model, config: dict[str, Any]) -> int:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ExportError(
            f"an image model must take [n, S, S, 3] pixels; this one takes {list(shape)}"
        )
    size = config.get("image_size") or shape[1]
    if shape[1] not in (None, size) or shape[2] not in (None, size):
        raise ExportError(f"model_config.json image_size {size} does not match the model {shape}")
    if not isinstance(size, int) or size < 1:
        raise ExportError("model_config.json needs image_size (the model takes any size)")
    return size


def build_serving_module(model, task: str, class_names: list[str], image_size: int | None):
    """A ``tf.Module`` with the serving signatures, tracking the state they use.

    The module tracks the model's variables and lookup tables (``TextVectorization``), in the
    model's own order (so the SavedModel bytes do not depend on the process), and not the Keras
    model object itself: saving the model object would also save its own default signature,
    which calls the model in training mode. That trace captures the random state of augmentation
    layers (``RandomFlip`` ...) and fails the save. The signatures call the model with
    ``training=False``, so augmentation, dropout and noise layers are identity in them.
    """
    import tensorflow as tf

    labels = tf.constant(class_names)

    def answer(inputs):
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        label = tf.gather(labels, tf.argmax(probabilities, axis=-1))
        return {"probabilities": probabilities, "label": label}

    signatures: dict[str, Any] = {}
    if task == "text-classification":

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def text_signature(text):
            return answer(text)

        signatures["serving_default"] = text_signature
    else:
        size = image_size

        def decode(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32), [size, size], method="bilinear")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def bytes_signature(image_bytes):
            pixels = tf.map_fn(
                decode, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32)
            )
            return answer(pixels)

        @tf.function(
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")]
        )
        def pixels_signature(image):
            return answer(image)

        signatures["serving_default"] = bytes_signature
        signatures["pixels"] = pixels_signature
    module = tf.Module(name="serving")
    module.model_variables = [v.value for v in model.variables]
    module.lookup_tables = _lookup_tables(model)
    for name, function in signatures.items():
        setattr(module, name, function)
    return module, signatures


def _lookup_tables(model) -> list:
    """The TF resources (lookup tables) the model's layers hold, in layer order."""
    from tensorflow.saved_model.experimental import TrackableResource

    found: list = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for value in vars(layer).values():
            if isinstance(value, TrackableResource) and not any(value is f for f in found):
                found.append(value)
    return found


def signature_specs(signatures: dict[str, Any], side: str) -> dict[str, Any]:
    """``{signature: {tensor name: {"dtype", "shape"}}}`` for the inputs or the outputs."""
    specs: dict[str, Any] = {}
    for name, function in sorted(signatures.items()):
        if side == "inputs":
            tensors = {spec.name: spec for spec in function.input_signature}
        else:
            tensors = function.get_concrete_function().structured_outputs
        specs[name] = {
            key: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
            for key, spec in sorted(tensors.items())
        }
    return specs


def _clear_fingerprint_uuid(saved_model_dir: Path) -> None:
    """fingerprint.pb carries a random uuid per save; clear it so exports are reproducible."""
    from tensorflow.core.protobuf import fingerprint_pb2

    path = saved_model_dir / "fingerprint.pb"
    if not path.is_file():
        return
    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString(path.read_bytes())
    fingerprint.ClearField("uuid")
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def export_keras(
    model_dir: Path,
    *,
    name: str,
    version: int = 1,
    out_dir: Path | None = None,
    layout: str = "name",
    architecture_json: Path | None = None,
    weights_h5: Path | None = None,
    example_image: Path | None = None,
    example_text: str | None = None,
    handler: bool = True,
    tflite: bool = False,
    atol: float = manifest_lib.DEFAULT_ATOL,
) -> ExportResult:
    """Write ``<out_dir>/model.tar.gz`` and ``<out_dir>/manifest.json`` (+ ``model.tflite``)."""
    check_name_version(name, version)
    if layout not in ("name", "servo"):
        raise ExportError(f"--layout {layout!r} must be 'name' or 'servo'")
    if not model_dir.is_dir():
        raise ExportError(f"--model-dir {model_dir} is not a directory")
    import keras
    import tensorflow as tf

    out_dir = out_dir or Path("artifacts") / name
    config = read_config(model_dir)
    metrics = read_metrics(model_dir)
    model = load_keras_model(model_dir, architecture_json, weights_h5)
    task = config["task"]
    class_names = [str(n) for n in config["class_names"]]
    size: int | None = None  # text models take strings
    if task == "image-classification":
        size = _image_size(model, config)
        png = example_png(size, example_image)
        original_input: Any = decode_rgb(png, size)[np.newaxis]
        body: dict[str, Any] = {"instances": [{"b64": base64.b64encode(png).decode("ascii")}]}
    else:
        text = example_text or DEFAULT_EXAMPLE_TEXT
        original_input = np.array([text], dtype=object)
        body = {"instances": [text]}
    expected = np.asarray(model(tf.constant(original_input), training=False), dtype=np.float32)
    if expected.shape != (1, len(class_names)):
        raise ExportError(
            f"the model outputs shape {list(expected.shape)} for one input; expected "
            f"[1, {len(class_names)}] (one probability per class in model_config.json)"
        )
    module, signatures = build_serving_module(model, task, class_names, size)
    serving = SERVING["tensorflow"]
    model_path = f"{name}/{version}" if layout == "name" else f"export/Servo/{version}"
    request_types = ["application/json"]
    if handler:
        request_types += (
            ["image/jpeg", "image/png"] if task == "image-classification" else ["text/plain"]
        )
    tfs_name = name if layout == "name" else "Servo"
    if task == "image-classification":
        input_doc = {
            "application/json": '{"instances": [{"b64": "<base64 JPEG/PNG>"}, ...]} '
            '(signature serving_default, input image_bytes); or {"signature_name": "pixels", '
            f'"instances": [<{size}x{size}x3 float array in [0, 255]>]}}',
            "image/jpeg | image/png": "the raw bytes of one image (code/inference.py)",
        }
    else:
        input_doc = {
            "application/json": '{"instances": ["text", ...]} (signature serving_default, '
            "input text)",
            "text/plain": "one text, UTF-8 (code/inference.py)",
        }
    output_doc = (
        '{"predictions": [{"label": str, "probability": float, "probabilities": '
        "{class_name: float}}]}"
        if handler
        else '{"predictions": [{"label": str, "probabilities": [float, ...]}]} (TF Serving)'
    )
    manifest: dict[str, Any] = {
        "schema_version": manifest_lib.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "framework": "tensorflow",
        "framework_version": serving["framework_version"],
        "py_version": serving["py_version"],
        "container": {
            "image_repository": serving["image_repository"],
            "model_server": serving["model_server"],
            "env": manifest_lib.container_env("tensorflow", tfs_name),
            "saved_model_path": model_path,
            "signatures": sorted(signatures),
        },
        "content_type": "application/json",
        "accept": "application/json",
        "request_content_types": request_types,
        "response_content_types": ["application/json"],
        "task": task,
        "class_names": class_names,
        "input": {
            **input_doc,
            "json_schema": manifest_lib.request_schema(task),
            "signatures": signature_specs(signatures, "inputs"),
        },
        "output": {
            "application/json": output_doc,
            "json_schema": manifest_lib.response_schema(class_names, handler=handler),
            "signatures": signature_specs(signatures, "outputs"),
        },
        "example": {
            "content_type": "application/json",
            "accept": "application/json",
            "body": body,
            "expected": {
                "labels": [class_names[int(i)] for i in expected.argmax(axis=1)],
                "probabilities": expected.tolist(),
            },
            "tolerance": {"atol": atol},
        },
        "training": {"metrics": metrics, "model_config": config},
        "exported_with": {
            "python": python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "files": {},
    }
    edge: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="model_export_") as tmp:
        staging = Path(tmp) / "artifact"
        saved_model_dir = staging / model_path
        tf.saved_model.save(module, str(saved_model_dir), signatures=signatures)
        _clear_fingerprint_uuid(saved_model_dir)
        if handler:
            copy_file(SERVING_SCRIPT, staging / "code" / "inference.py")
            copy_file(model_dir / "model_config.json", staging / "code" / "model_config.json")
        if tflite:
            from model_export.edge import export_tflite

            out_dir.mkdir(parents=True, exist_ok=True)
            edge["tflite"] = export_tflite(model, original_input, out_dir / "model.tflite", atol)
        return finish(staging=staging, out_dir=out_dir, manifest=manifest, edge=edge)

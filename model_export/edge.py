"""Edge formats beside the serving artifact: ONNX (from PyTorch) and TFLite (from Keras).

Each is written next to ``model.tar.gz`` (the serving containers do not use them) and accepted
only after a numeric parity check against the original model on the example input plus
perturbed copies of it, batch dimension included: ``max |p_edge - p_original| <= atol``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from model_export.errors import ExportError
from model_export.tarball import sha256_file

log = logging.getLogger(__name__)


def _parity_batch(batch: np.ndarray) -> np.ndarray:
    """The example plus two fixed perturbations of it: three rows, different answers."""
    rng = np.random.default_rng(1)
    scale = float(np.abs(batch).max()) or 1.0
    noisy = [batch + rng.normal(0, 0.1 * scale, batch.shape).astype(np.float32) for _ in range(2)]
    return np.concatenate([batch, *noisy]).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _record(path: Path, diff: float, atol: float, **extra: Any) -> dict[str, Any]:
    if not diff <= atol:
        raise ExportError(f"{path.name} differs from the original model by {diff:.3g} > {atol}")
    log.info("%s: max |delta p| %.2e (atol %g)", path.name, diff, atol)
    return {
        "path": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "max_abs_diff": diff,
        "atol": atol,
        **extra,
    }


def export_onnx(model, batch: np.ndarray, path: Path, atol: float) -> dict[str, Any]:
    """``model`` (logits out) -> ONNX with a dynamic batch; checked with onnxruntime."""
    import onnxruntime as ort
    import torch

    sample = torch.from_numpy(np.repeat(batch, 2, axis=0))
    for chatty in ("onnx_ir", "onnxscript", "torch.onnx"):  # INFO lines per optimisation pass
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (sample,),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            dynamo=True,
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    check = _parity_batch(batch)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"input": check})
    with torch.inference_mode():
        torch_probs = torch.softmax(model(torch.from_numpy(check)), dim=1).numpy()
    diff = float(np.abs(_softmax(onnx_logits) - torch_probs).max())
    return _record(
        path,
        diff,
        atol,
        input="input float32 [n, 3, S, S] (preprocessed)",
        output="logits float32 [n, classes] (apply softmax)",
        onnxruntime=ort.__version__,
    )


def export_tflite(model, pixels: np.ndarray, path: Path, atol: float) -> dict[str, Any]:
    """A Keras image model (pixels in, probabilities out) -> float32 TFLite, checked in TF's
    interpreter. Text models need the Flex delegate for their string ops, which TF's Python
    interpreter does not link, so their parity cannot be checked here: refused with a message."""
    import tensorflow as tf

    if pixels.dtype.kind not in "fiu":
        raise ExportError(
            "TFLite export is for image models: a TextVectorization model needs TensorFlow's "
            "Flex (SELECT_TF_OPS) delegate for its string ops, which tf.lite.Interpreter does "
            "not include here, so its parity cannot be checked"
        )
    # from_keras_model freezes the weights into constants; from_concrete_functions kept them as
    # resource variables the interpreter never initialised (every output NaN).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        interpreter = tf.lite.Interpreter(model_path=str(path))  # deprecated, still the one here
    signature = interpreter.get_signature_list()["serving_default"]
    if len(signature["inputs"]) != 1 or len(signature["outputs"]) != 1:
        raise ExportError(f"TFLite export expects one input and one output, got {signature}")
    runner = interpreter.get_signature_runner("serving_default")
    check = np.clip(_parity_batch(pixels), 0.0, 255.0).astype(np.float32)
    (lite,) = runner(**{signature["inputs"][0]: check}).values()
    original = np.asarray(model(check, training=False))
    diff = float(np.abs(lite - original).max())
    return _record(
        path,
        diff,
        atol,
        input="image float32 [n, S, S, 3] in [0, 255]",
        output="probabilities float32 [n, classes]",
        tensorflow=tf.__version__,
    )

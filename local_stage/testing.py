"""Small artifacts in both containers' layouts, for the local stage's tests and benchmarks.

``build_torch_artifact`` writes a PyTorch-container artifact (``model.pth`` state_dict +
``code/inference.py`` with ``model_fn``/``input_fn``/``predict_fn``/``output_fn``); its
``inference.py`` also understands a few control inputs so tests can make the model fail, hang or
crash on purpose. ``build_tf_artifact`` writes a TF Serving artifact (a Keras SavedModel under
``1/``), optionally with ``code/inference.py`` handlers. ``pack`` makes the ``model.tar.gz``.
"""

from __future__ import annotations

import tarfile
import textwrap
from pathlib import Path

TORCH_INFERENCE_PY = '''
"""A tiny classifier following the SageMaker PyTorch toolkit contract (test artifact)."""
import json
import os
import time

import numpy as np
import torch

CLASSES = ["a", "b", "c"]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def model_fn(model_dir):
    model = Tiny()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), weights_only=True))
    return model.eval()


def input_fn(body, content_type):
    if content_type == "application/x-npy":
        import io
        return torch.from_numpy(np.load(io.BytesIO(body))).float()
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    data = json.loads(body)
    if isinstance(data, dict):
        if "fail" in data:
            raise ValueError("the model refused this input: " + str(data["fail"]))
        if "sleep_s" in data:
            time.sleep(float(data["sleep_s"]))
            data = data.get("instances", [[0.0, 0.0, 0.0, 0.0]])
        elif "crash" in data:
            os._exit(3)
        else:
            data = data["instances"]
    return torch.tensor(data, dtype=torch.float32).reshape(-1, 4)


def predict_fn(data, model):
    with torch.no_grad():
        return torch.softmax(model(data), dim=1)


def output_fn(prediction, accept):
    probs = prediction.numpy()
    body = {
        "predictions": [
            {"label": CLASSES[int(row.argmax())], "probabilities": row.round(6).tolist()}
            for row in probs
        ]
    }
    if accept in ("application/json", "*/*", None):
        return json.dumps(body), "application/json"
    if accept == "text/csv":
        return "\\n".join(CLASSES[int(r.argmax())] for r in probs), "text/csv"
    raise ValueError(f"unsupported accept {accept}")
'''

TF_INFERENCE_PY = '''
"""TF Serving container handlers (test artifact): a JSON list of rows in, labels out."""
import json

CLASSES = ["a", "b", "c"]


def input_handler(data, context):
    if context.request_content_type != "application/json":
        raise ValueError(f"unsupported content type {context.request_content_type}")
    rows = json.loads(data.read().decode("utf-8"))
    return json.dumps({"instances": [{"x": r} for r in rows]})


def output_handler(response, context):
    if response.status_code != 200:
        raise ValueError(response.content.decode("utf-8"))
    preds = response.json()["predictions"]
    labels = [CLASSES[max(range(len(p)), key=p.__getitem__)] for p in preds]
    return json.dumps({"labels": labels, "probabilities": preds}), "application/json"
'''


def build_torch_artifact(model_dir: Path, *, seed: int = 0) -> Path:
    """A PyTorch-container artifact directory (unpacked)."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fc = torch.nn.Linear(4, 3)
    torch.save({"fc.weight": fc.weight.data, "fc.bias": fc.bias.data}, model_dir / "model.pth")
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(TORCH_INFERENCE_PY))
    return model_dir


def build_torchscript_artifact(model_dir: Path, *, seed: int = 0) -> Path:
    """A PyTorch artifact with no code at all: the toolkit's default handlers serve TorchScript."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.jit.save(torch.jit.script(model.eval()), str(model_dir / "model.pt"))
    return model_dir


def build_tf_artifact(model_dir: Path, *, with_handlers: bool = False, seed: int = 0) -> Path:
    """A TF Serving artifact: a Keras model with input ``x`` (None, 4) → ``probabilities``."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="x")
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs)
    model = keras.Model(inputs, outputs)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.export(str(model_dir / "1"), verbose=False)
    if with_handlers:
        code = model_dir / "code"
        code.mkdir(exist_ok=True)
        (code / "inference.py").write_text(textwrap.dedent(TF_INFERENCE_PY))
    return model_dir


def pack(model_dir: Path, tarball: Path) -> Path:
    """``model.tar.gz`` with the directory's contents at the archive root, as SageMaker expects."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return tarball

"""A tiny classifier following the SageMaker PyTorch toolkit contract, that fails on request.

Copied into the artifact as ``code/inference.py``. A JSON body ``{"fail": why}`` raises in
``input_fn``, ``{"sleep_s": s, "instances": ...}`` answers after ``s`` seconds, ``{"crash": 1}``
ends the replica's process; answers carry ``max_batch_rows``, the most rows one ``predict_fn``
call of this replica has seen (how requests were batched).
"""

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


MAX_BATCH_ROWS = [0]


def predict_fn(data, model):
    MAX_BATCH_ROWS[0] = max(MAX_BATCH_ROWS[0], int(data.shape[0]))
    with torch.no_grad():
        return torch.softmax(model(data), dim=1)


def output_fn(prediction, accept):
    probs = prediction.numpy()
    body = {
        "predictions": [
            {"label": CLASSES[int(row.argmax())], "probabilities": row.tolist()} for row in probs
        ],
        "max_batch_rows": MAX_BATCH_ROWS[0],
    }
    if accept in ("application/json", "*/*", None):
        return json.dumps(body), "application/json"
    if accept == "text/csv":
        return "\n".join(CLASSES[int(r.argmax())] for r in probs), "text/csv"
    raise ValueError(f"unsupported accept {accept}")

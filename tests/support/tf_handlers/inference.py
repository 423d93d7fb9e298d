"""TF Serving container handlers for tests/support/artifacts.py: a JSON list of rows in, labels out."""

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

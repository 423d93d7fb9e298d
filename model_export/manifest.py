"""The artifact manifest: what the CDK stack, the local stage and ``verify`` read.

``manifest.json`` is written twice: inside the tarball (no creation time, so the tarball is
byte-reproducible) and beside it in ``artifacts/<name>/`` (the same object plus ``created_at``,
the tarball's own sha256 under ``artifact`` and any ``edge`` formats). Schema version 1::

    schema_version     1
    name, version      model name (str) and version (int >= 1)
    framework          "pytorch" | "tensorflow"
    framework_version  the AWS serving container (DLC) version it targets: PyTorch "1.4" (the
                       ``ray-serve`` image family), TensorFlow "2.20"
    py_version         that container's Python: "py313" / "py312"
    container          {"image_family", "image_repository", "model_server", "env": {NAME: value}}
    serve              PyTorch: the Ray Serve settings in config.yaml {"config", "replicas",
                       "cpus_per_replica", "max_ongoing_requests", "max_batch_size",
                       "batch_wait_ms"}
    weights            PyTorch: {"format": "state_dict", "path", "saved_with_torch",
                       "saved_with_source", "serving_torch"}
    content_type       what JSON requests are sent as ("application/json")
    accept             the default response type ("application/json")
    request_content_types / response_content_types   every type the handlers take / give
    task, class_names  "image-classification" | "text-classification", labels by class index
    input, output      per content type a description, "json_schema" (JSON Schema of the JSON
                       request / response body), and "tensor" (PyTorch) or "signatures" (TF:
                       {signature: {tensor: {"dtype", "shape"}}})
    example            {"content_type", "accept", "body": <JSON request>,
                        "expected": {"labels": [...], "probabilities": [[...]]},
                        "tolerance": {"atol": 1e-4}}  (expected = the original model's output)
    training           {"metrics": {...}, "model_config": {...}}
    exported_with      library versions used to export
    files              {relative path: {"sha256", "bytes"}} for every other file in the tarball
    -- beside the tarball only --
    created_at         ISO 8601 UTC
    artifact           {"path": "model.tar.gz", "sha256", "bytes"}
    edge               {"onnx" | "tflite": {"path", "sha256", "bytes", "max_abs_diff", "atol"}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.frameworks import SERVING

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
DEFAULT_ATOL = 1e-4

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "name": str,
    "version": int,
    "framework": str,
    "framework_version": str,
    "py_version": str,
    "container": dict,
    "content_type": str,
    "accept": str,
    "request_content_types": list,
    "response_content_types": list,
    "task": str,
    "class_names": list,
    "input": dict,
    "output": dict,
    "example": dict,
    "training": dict,
    "exported_with": dict,
    "files": dict,
}


def validate(manifest: Any) -> list[str]:
    """Every problem with ``manifest`` as a readable sentence; an empty list when it is valid."""
    if not isinstance(manifest, dict):
        return ["manifest.json must hold a JSON object"]
    problems = []
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            problems.append(f"manifest.json lacks {key!r}")
        elif not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            problems.append(f"manifest.json {key!r} must be a {getattr(kind, '__name__', kind)}")
    if problems:
        return problems
    if manifest["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"manifest.json schema_version {manifest['schema_version']} is not {SCHEMA_VERSION}; "
            "re-export the model with this version of model_export"
        )
    if manifest["framework"] not in SERVING:
        problems.append(f"framework {manifest['framework']!r} is not one of {sorted(SERVING)}")
    if manifest["version"] < 1:
        problems.append("version must be a positive integer")
    example = manifest["example"]
    for key in ("content_type", "accept", "body", "expected", "tolerance"):
        if key not in example:
            problems.append(f"manifest.json example lacks {key!r}")
    expected = example.get("expected", {})
    if not isinstance(expected, dict) or not {"labels", "probabilities"} <= set(expected):
        problems.append("manifest.json example.expected needs 'labels' and 'probabilities'")
    for path, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            problems.append(f"manifest.json files[{path!r}] needs a sha256")
    return problems


def write(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def container_env(framework: str, name: str) -> dict[str, str]:
    """Environment the serving container should get (the CDK stack may pass it through)."""
    if framework == "tensorflow":
        # Pins the default model, which the container otherwise takes from the first SavedModel
        # it happens to find.
        return {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": name}
    return {"SAGEMAKER_PROGRAM": "inference.py"}


def request_schema(task: str) -> dict[str, Any]:
    """JSON Schema of the JSON request body both frameworks' handlers take."""
    if task == "text-classification":
        item: dict[str, Any] = {"type": "string", "minLength": 1}
    else:
        item = {
            "type": "object",
            "required": ["b64"],
            "properties": {"b64": {"type": "string", "contentEncoding": "base64"}},
            "description": "an encoded JPEG or PNG image",
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["instances"],
        "properties": {"instances": {"type": "array", "minItems": 1, "items": item}},
    }


def response_schema(class_names: list[str], *, handler: bool = True) -> dict[str, Any]:
    """JSON Schema of the JSON response: ours (handler) or TF Serving's own (no handler)."""
    if handler:
        prediction = {
            "type": "object",
            "required": ["label", "probability", "probabilities"],
            "properties": {
                "label": {"enum": class_names},
                "probability": {"type": "number", "minimum": 0, "maximum": 1},
                "probabilities": {
                    "type": "object",
                    "required": class_names,
                    "additionalProperties": False,
                    "properties": {
                        name: {"type": "number", "minimum": 0, "maximum": 1} for name in class_names
                    },
                },
            },
        }
    else:
        prediction = {
            "type": "object",
            "required": ["label", "probabilities"],
            "properties": {
                "label": {"enum": class_names},
                "probabilities": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": len(class_names),
                    "maxItems": len(class_names),
                },
            },
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array", "items": prediction}},
    }

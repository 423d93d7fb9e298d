"""The artifact manifest: what the CDK stack, the local stage and ``verify`` read.

``manifest.json`` is written twice: inside the tarball (no creation time, so the tarball is
byte-reproducible) and beside it in ``artifacts/<name>/`` (the same object plus ``created_at``,
the tarball's own sha256 under ``artifact`` and any ``edge`` formats). :class:`Manifest` below is
its one definition (schema version 1): every key, its type, allowed values and meaning. The code
inside the serving containers (``model_export/serving/``) reads the JSON without this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from model_export.errors import ExportError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
DEFAULT_ATOL = 1e-4

_SHA256 = r"^[0-9a-f]{64}$"


class _Record(BaseModel):
    # Strict: "1" is no version and true no integer; unknown keys are typos or a newer schema.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FileEntry(_Record):
    sha256: str = Field(pattern=_SHA256)
    bytes: int | None = Field(
        None, ge=0, description="the exporter records it; verify needs only sha256"
    )


class Container(_Record):
    """The AWS serving container (DLC) the artifact targets."""

    image_repository: str = Field(description="the DLC's ECR repository, e.g. ray")
    model_server: str
    env: dict[str, str] = Field(description="environment the stack passes to the container")
    image_family: str = Field("", description='PyTorch: the image family ("ray-serve")')
    saved_model_path: str = Field("", description="TensorFlow: the SavedModel's folder")
    signatures: list[str] = Field([], description="TensorFlow: the SavedModel's signatures")


class Serve(_Record):
    """PyTorch: the Ray Serve settings written to ``config``."""

    config: str
    replicas: int = Field(ge=1)
    cpus_per_replica: float = Field(gt=0)
    max_ongoing_requests: int = Field(ge=1)
    max_batch_size: int = Field(ge=1)
    batch_wait_ms: float = Field(ge=0)


class Weights(_Record):
    """PyTorch: how the weights were saved and which torch serves them."""

    format: Literal["state_dict"]
    path: str
    saved_with_torch: str
    saved_with_source: str
    serving_torch: str


class Expected(_Record):
    labels: list[str]
    probabilities: list[list[float]]


class Example(_Record):
    """One request and the original model's answer to it (``verify`` replays it)."""

    content_type: str
    accept: str
    body: dict[str, Any] = Field(description="the JSON request")
    expected: Expected
    tolerance: dict[str, float] = Field(description='{"atol": ...} on the probabilities')


class Training(_Record):
    metrics: dict[str, Any]
    model_config_: dict[str, Any] = Field(alias="model_config")


class Artifact(_Record):
    path: str
    sha256: str = Field(pattern=_SHA256)
    bytes: int = Field(ge=0)


class EdgeFile(Artifact):
    """An edge format (ONNX, TFLite) and its numeric parity with the original model."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    max_abs_diff: float
    atol: float


class Manifest(_Record):
    """manifest.json, schema version 1."""

    schema_version: int
    name: str = Field(description="the model's name")
    version: int = Field(ge=1)
    framework: Literal["pytorch", "tensorflow"]
    framework_version: str = Field(description='the serving container\'s version: "1.4", "2.20"')
    py_version: str = Field(description='that container\'s Python: "py313" / "py312"')
    container: Container
    serve: Serve | None = None
    weights: Weights | None = None
    torch_export: dict[str, Any] | None = Field(None, description="PyTorch: the model.pt2 check")
    content_type: str = Field(description="what JSON requests are sent as")
    accept: str = Field(description="the default response type")
    request_content_types: list[str] = Field(description="every type the handlers take")
    response_content_types: list[str] = Field(description="every type the handlers give")
    task: Literal["image-classification", "text-classification"]
    class_names: list[str] = Field(description="labels by class index")
    input: dict[str, Any] = Field(
        description='per content type a description, "json_schema" (of the JSON request) and '
        '"tensor" (PyTorch) or "signatures" (TF: {signature: {tensor: {"dtype", "shape"}}})'
    )
    output: dict[str, Any] = Field(description='as "input", for the response')
    example: Example
    training: Training
    exported_with: dict[str, str] = Field(description="library versions used to export")
    files: dict[str, FileEntry] = Field(description="every other file in the tarball")
    # Beside the tarball only.
    created_at: str | None = Field(None, description="ISO 8601 UTC")
    artifact: Artifact | None = Field(None, description="the tarball itself")
    edge: dict[Literal["onnx", "tflite"], EdgeFile] | None = None

    @field_validator("schema_version")
    @classmethod
    def _this_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"must be {SCHEMA_VERSION}; re-export the model with this version of model_export"
            )
        return value


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _step(annotation: Any) -> Any:
    """The annotation without ``| None``."""
    if get_origin(annotation) in (Union, UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _where(loc: tuple[int | str, ...]) -> tuple[str, Any]:
    """``loc`` as the path a reader knows (``files['code/x.py'].sha256``) and its annotation."""
    path, annotation = "", cast(Any, Manifest)
    for part in loc:
        annotation = _step(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            path += f".{part}"
            annotation = field.annotation if field else None
        elif get_origin(annotation) in (dict, list):
            path += f"[{part!r}]"
            annotation = get_args(annotation)[-1]
        else:  # inside a union's or a tag's own name
            continue
    return path.lstrip("."), _step(annotation)


def _problem(error: Any) -> str:
    path, annotation = _where(error["loc"])
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        parent, _ = _where(error["loc"][:-1])
        return f"manifest.json {parent + ' ' if parent else ''}lacks {error['loc'][-1]!r}"
    if kind == "extra_forbidden":
        return f"manifest.json has an unknown key {path!r}"
    if kind == "value_error":
        allowed = str(ctx["error"])
    elif kind == "literal_error":
        allowed = "one of " + ", ".join(map(str, get_args(annotation)))
    elif kind.endswith("_type"):
        allowed = _EXPECTED.get(annotation) or f"a JSON {'list' if 'list' in kind else 'object'}"
    elif kind == "string_pattern_mismatch":
        allowed = "a sha256: 64 lower-case hex digits"
    else:
        allowed = error["msg"].removeprefix("Input should be ")
    allowed = allowed if allowed.startswith("must") else f"must be {allowed}"
    return f"manifest.json {path} has bad value {error['input']!r}: {allowed}"


def validate(manifest: Any) -> list[str]:
    """Every problem with ``manifest`` as a readable sentence; an empty list when it is valid."""
    if not isinstance(manifest, dict):
        return ["manifest.json must hold a JSON object"]
    try:
        Manifest.model_validate(manifest)
    except ValidationError as error:
        return [_problem(e) for e in error.errors(include_url=False)]
    return []


def write(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` after checking it against :class:`Manifest`; ExportError if it fails."""
    problems = validate(manifest)
    if problems:
        raise ExportError(f"refusing to write {path}: " + "; ".join(problems))
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

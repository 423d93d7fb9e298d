"""The API's published OpenAPI description (`lambda_src/openapi.json`) as API Gateway models.

The document is the single source of the request shapes: `PredictionApi` builds its request
model from `components.schemas.PredictRequest` through this module, so what API Gateway validates
and what the API publishes cannot drift apart (tests/infra/serving/test_openapi.py checks the
synthesized template against the document).

API Gateway models are JSON Schema draft 4. An OpenAPI 3.0 schema object is close to that subset;
this converter inlines `#/components/schemas/...` references (API Gateway cannot resolve them) and
refuses the OpenAPI-only keywords whose meaning draft 4 would silently drop (`nullable`, ...).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # CDK (and its node process) is loaded only to build a model, not to read one
    from aws_cdk import aws_apigateway as apigw

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "lambda_src" / "openapi.json"
_SCHEMA_REF_PREFIX = "#/components/schemas/"

# OpenAPI 3.0 schema keyword -> apigw.JsonSchema keyword argument (JSON Schema draft 4 meaning).
_KEYWORDS = {
    "title": "title",
    "description": "description",
    "type": "type",
    "enum": "enum",
    "format": "format",
    "default": "default",
    "multipleOf": "multiple_of",
    "maximum": "maximum",
    "exclusiveMaximum": "exclusive_maximum",
    "minimum": "minimum",
    "exclusiveMinimum": "exclusive_minimum",
    "maxLength": "max_length",
    "minLength": "min_length",
    "pattern": "pattern",
    "maxItems": "max_items",
    "minItems": "min_items",
    "uniqueItems": "unique_items",
    "maxProperties": "max_properties",
    "minProperties": "min_properties",
    "required": "required",
    "properties": "properties",
    "additionalProperties": "additional_properties",
    "items": "items",
    "allOf": "all_of",
    "anyOf": "any_of",
    "oneOf": "one_of",
    "not": "not_",
}
# Annotations with no validation meaning: left out of API Gateway's model.
_ANNOTATIONS = frozenset({"example", "externalDocs", "deprecated", "xml"})


@cache
def _load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    if not str(doc.get("openapi", "")).startswith("3.0."):
        raise ValueError(
            f"{path}: expected an OpenAPI 3.0 document, got openapi={doc.get('openapi')!r}"
        )
    return doc


def load_openapi(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """The published OpenAPI document (a fresh copy; callers may change it)."""
    return json.loads(json.dumps(_load(path)))


def draft4_schema(name: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """`components.schemas.<name>` as a self-contained JSON Schema draft 4 document.

    References are inlined, annotations dropped and `$schema` set, which is what API Gateway
    stores as the model's `Schema`.
    """
    doc = document if document is not None else _load(OPENAPI_PATH)
    schemas = doc.get("components", {}).get("schemas", {})
    if name not in schemas:
        raise KeyError(f"the OpenAPI document has no components.schemas.{name}")
    inlined = _inline(schemas[name], schemas, (name,))
    return {"$schema": "http://json-schema.org/draft-04/schema#", **inlined}


def _inline(schema: Any, schemas: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    where = "/".join(seen)
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: a schema must be a JSON object, got {schema!r}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith(_SCHEMA_REF_PREFIX):
            raise ValueError(f"{where}: only {_SCHEMA_REF_PREFIX}... references are supported")
        target = ref.removeprefix(_SCHEMA_REF_PREFIX)
        if target in seen:
            raise ValueError(
                f"{where}: recursive reference to {target} (API Gateway cannot model it)"
            )
        if target not in schemas:
            raise ValueError(f"{where}: {ref} does not exist")
        return _inline(schemas[target], schemas, (*seen, target))
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _KEYWORDS:
            raise ValueError(
                f"{where}: the keyword {key!r} has no JSON Schema draft 4 equivalent in API "
                "Gateway's models; express the rule with draft 4 keywords"
            )
        if key == "properties":
            out[key] = {prop: _inline(sub, schemas, (*seen, prop)) for prop, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _inline(value, schemas, (*seen, key))
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [
                _inline(sub, schemas, (*seen, f"{key}[{i}]")) for i, sub in enumerate(value)
            ]
        else:
            out[key] = value
    return out


def to_json_schema(schema: dict[str, Any]) -> apigw.JsonSchema:
    """A draft 4 schema (as `draft4_schema` returns) as CDK's `apigw.JsonSchema`."""
    from aws_cdk import aws_apigateway as apigw

    kwargs: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            if value != "http://json-schema.org/draft-04/schema#":
                raise ValueError(f"API Gateway models are JSON Schema draft 4, not {value}")
            kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
            continue
        arg = _KEYWORDS.get(key)
        if arg is None:
            raise ValueError(f"unsupported JSON Schema keyword {key!r}")
        if key == "type":
            kwargs[arg] = apigw.JsonSchemaType[value.upper()]
        elif key == "properties":
            kwargs[arg] = {prop: to_json_schema(sub) for prop, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            kwargs[arg] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            kwargs[arg] = [to_json_schema(sub) for sub in value]
        else:
            kwargs[arg] = value
    return apigw.JsonSchema(**kwargs)

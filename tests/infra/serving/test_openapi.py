"""The published OpenAPI document (lambda_src/openapi.json) and the deployed API cannot drift.

API Gateway's request model for `POST /predict` is built from the document; these tests hold the
synthesized template, the Lambda's error codes and the gateway's own answers to it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator

from stacks import openapi
from stacks.prediction_api import _GATEWAY_ERRORS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[3]


def _operation(method: str, path: str) -> dict:
    return openapi.load_openapi()["paths"][path][method]


def test_the_document_is_a_valid_openapi_3_0_description():
    document = json.loads(openapi.OPENAPI_PATH.read_text())

    errors = [e.message for e in OpenAPIV30SpecValidator(document).iter_errors()]

    assert errors == []
    assert document["openapi"].startswith("3.0.")
    assert set(document["paths"]) == {"/predict", "/health"}
    assert document["components"]["securitySchemes"]["apiKey"] == {
        **document["components"]["securitySchemes"]["apiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_api_gateways_request_model_is_the_documents_predict_request(variant, request):
    _, template = request.getfixturevalue(variant)
    models = template.find_resources("AWS::ApiGateway::Model")
    schemas = [m["Properties"]["Schema"] for m in models.values()]

    # Then: exactly the document's schema, every rule kept (CDK drops values it cannot render,
    # such as a null in an enum; this comparison would catch it).
    assert schemas == [openapi.draft4_schema("PredictRequest")]


def test_the_request_body_is_documented_for_every_content_type_the_function_accepts():
    from prediction_gateway import payloads

    body = _operation("post", "/predict")["requestBody"]

    assert body["required"] is True
    assert set(body["content"]) == set(payloads.ACCEPTED_CONTENT_TYPES)
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }


def _lambda_error_codes() -> set[str]:
    """Every `ApiError(status, "Code", ...)` the function can raise, read from its source."""
    package = ROOT / "lambda_src" / "prediction_gateway"
    codes = set()
    nodes = (n for f in sorted(package.glob("*.py")) for n in ast.walk(ast.parse(f.read_text())))
    for node in nodes:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "ApiError"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            codes.add(node.args[1].value)
    return codes


def test_every_error_code_the_api_answers_is_in_the_documented_error_schema():
    documented = set(
        openapi.load_openapi()["components"]["schemas"]["Error"]["properties"]["error"][
            "properties"
        ]["code"]["enum"]
    )
    lambda_codes = _lambda_error_codes()
    gateway_codes = {code for _, _, code, _ in _GATEWAY_ERRORS}

    assert len(lambda_codes) > 15  # the AST walk found the function's errors
    assert lambda_codes - documented == set()
    assert gateway_codes - documented == set()


def test_every_gateway_answer_is_a_documented_status_of_the_routes_it_can_hit():
    predict = set(_operation("post", "/predict")["responses"])
    health = set(_operation("get", "/health")["responses"])
    statuses = {status for _, status, _, _ in _GATEWAY_ERRORS if status is not None}

    # 404 answers unknown routes only, so no operation documents it.
    assert statuses - {"404"} <= predict
    assert {"403", "429", "504"} <= health
    for status in predict | health:
        assert status == "200" or 400 <= int(status) <= 599


def test_every_documented_error_uses_the_error_schema():
    document = openapi.load_openapi()
    components = document["components"]["responses"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    continue
                if "$ref" in response:
                    response = components[response["$ref"].rsplit("/", 1)[1]]
                assert response["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                }, f"{method.upper()} {path} {status}"


def test_the_converter_refuses_what_api_gateway_could_not_enforce():
    def doc(schema: dict) -> dict:
        return {
            "openapi": "3.0.3",
            "components": {"schemas": {"S": schema, "T": {"$ref": "#/components/schemas/S"}}},
        }

    with pytest.raises(ValueError, match="nullable"):
        openapi.draft4_schema("S", doc({"type": "string", "nullable": True}))
    with pytest.raises(ValueError, match="recursive reference"):
        openapi.draft4_schema(
            "S", doc({"type": "object", "properties": {"next": {"$ref": "#/components/schemas/S"}}})
        )
    with pytest.raises(KeyError, match="components.schemas.Missing"):
        openapi.draft4_schema("Missing", doc({}))
    inlined = openapi.draft4_schema("T", doc({"type": "string", "example": "x", "minLength": 2}))
    assert inlined == {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "string",
        "minLength": 2,
    }


def test_the_readme_links_the_published_description():
    readme = (ROOT / "lambda_src" / "README.md").read_text()

    assert "(openapi.json)" in readme

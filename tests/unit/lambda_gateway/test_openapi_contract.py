"""The published request schema (lambda_src/openapi.json, API Gateway's request model) and the
function agree: API Gateway never turns away a body the function would serve, and every body the
schema refuses is one the function refuses too (so the early refusal changes nothing but cost)."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.openapi import draft4_schema
from tests.support.lambda_gateway import PNG, invoke_response, json_event

VALIDATOR = jsonschema.Draft4Validator(draft4_schema("PredictRequest"))
KEYS = ["instances", "inputs", "image", "images", "text", "texts", "signature_name", "x"]
B64 = base64.b64encode(PNG).decode()

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["", "x", B64, "data:image/png;base64," + B64, "a b", "====", "\u00e9"])
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.sampled_from(KEYS), json_value, max_size=3) | json_value


def reaches_endpoint(gw: Any, doc: Any) -> tuple[bool, int]:
    """Whether the function sent this body to the (stubbed, healthy) endpoint; its status."""
    gw.stubber.deactivate()
    stubber = Stubber(gw.client)
    stubber.add_response("invoke_endpoint", invoke_response(b'{"outputs": 1}'))
    with stubber:
        response = gw.handle(json_event(doc))
        try:
            stubber.assert_no_pending_responses()
            called = True  # the queued answer was consumed
        except AssertionError:
            called = False
    return called, response["statusCode"]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=documents)
def test_a_body_the_schema_refuses_is_refused_by_the_function_too(gw, doc) -> None:
    called, status = reaches_endpoint(gw, doc)
    valid = VALIDATOR.is_valid(doc)

    if called:
        assert valid, f"API Gateway would refuse a body the function serves: {json.dumps(doc)}"
    if not valid:
        assert 400 <= status < 500 and not called


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": [[0.1, 0.2]]},
        {"instances": [{"b64": B64}], "signature_name": "serving_default"},
        {"inputs": {"x": [1]}},
        {"inputs": 0},
        {"image": B64},
        {"image": "data:image/png;base64," + B64},
        {"images": [B64, B64]},
        {"text": "Great crew."},
        {"texts": ["a", "b"]},
    ],
)
def test_every_documented_shape_passes_the_schema_and_reaches_the_endpoint(gw, doc) -> None:
    assert VALIDATOR.is_valid(doc), list(VALIDATOR.iter_errors(doc))
    assert reaches_endpoint(gw, doc) == (True, 200)


@pytest.mark.parametrize(
    "doc",
    [
        {},
        [],
        {"image": B64, "text": "x"},
        {"instances": [1], "inputs": [1]},
        {"image": B64, "signature_name": "s"},
        {"instances": []},
        {"images": []},
        {"texts": [""]},
        {"text": ""},
        {"inputs": []},
        {"inputs": ""},
        {"inputs": {}},
    ],
)
def test_malformed_shapes_are_refused_by_the_schema(doc) -> None:
    assert not VALIDATOR.is_valid(doc)

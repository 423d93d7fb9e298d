"""Property-based: whatever arrives, the handler answers a well-formed response, never raises, and
never blames the server for a client's fault (the stubbed endpoint always succeeds here, so any
5xx would be the gateway's own bug)."""

from __future__ import annotations

import base64
import json
from typing import Any

from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.lambda_gateway import invoke_response, load_event

PROPERTY_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
shaped_doc = st.one_of(
    st.fixed_dictionaries({"instances": json_value}),
    st.fixed_dictionaries({"inputs": json_value}),
    st.fixed_dictionaries(
        {"image": st.text() | st.binary().map(lambda b: base64.b64encode(b).decode())}
    ),
    st.fixed_dictionaries({"images": st.lists(st.text(), max_size=3)}),
    st.fixed_dictionaries({"text": json_value}),
    st.fixed_dictionaries({"texts": json_value}),
    st.dictionaries(st.sampled_from(["instances", "inputs", "image", "text", "x"]), json_value),
    json_value,
)
bodies = st.one_of(
    st.none(),
    st.text(),
    shaped_doc.map(json.dumps),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(["\x89PNG\r\n\x1a\n", "\ud800", "[" * 3000, '{"text": NaN}']),
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=latin-1",
            "image/png",
            "image/jpeg",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(max_size=30),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", ""]
) | st.text(max_size=8)
paths = st.sampled_from(["/predict", "/health", "/predict/", "/", "", "/predict/x"]) | st.text(
    max_size=20
)
header_maps = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    ev = load_event("apigw_rest_v1_predict_instances.json")
    method, path = draw(methods), draw(paths)
    headers = draw(header_maps)
    content_type = draw(content_types)
    if content_type is not None:
        headers[draw(st.sampled_from(["content-type", "Content-Type"]))] = content_type
    if draw(st.booleans()):
        headers["Accept"] = draw(
            st.text(max_size=40) | st.sampled_from(["*/*", "application/json"])
        )
    ev["httpMethod"] = method
    ev["resource"] = draw(st.sampled_from([path, "/{proxy+}"]))
    ev["path"] = path
    ev["headers"] = draw(st.sampled_from([headers, None]))
    ev["body"] = draw(bodies)
    ev["isBase64Encoded"] = draw(st.booleans())
    return ev


def assert_well_formed(response: Any) -> None:
    assert isinstance(response, dict)
    assert isinstance(response["statusCode"], int) and 100 <= response["statusCode"] <= 599
    assert isinstance(response["headers"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert isinstance(response["body"], str)
    assert isinstance(response["isBase64Encoded"], bool)
    json.dumps(response)  # API Gateway serialises it
    if response["statusCode"] >= 400:
        doc = json.loads(response["body"])
        assert set(doc) == {"error", "requestId"}
        assert isinstance(doc["error"]["code"], str) and doc["error"]["code"]
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]


def run_with_healthy_endpoint(gw: Any, event: Any) -> tuple[dict[str, Any], bool]:
    """Handle one event while the endpoint (stubbed) would answer 200; report if it was called."""
    gw.stubber.deactivate()
    stubber = Stubber(gw.client)
    stubber.add_response("invoke_endpoint", invoke_response(b'{"outputs": "ok"}'))
    with stubber:
        response = gw.handle(event)
        try:
            stubber.assert_no_pending_responses()
            called = True  # the stubbed answer was consumed
        except AssertionError:
            called = False
    return response, called


@PROPERTY_SETTINGS
@given(event=events())
def test_any_event_gets_a_well_formed_answer_and_never_a_5xx(gw, event) -> None:
    response, called = run_with_healthy_endpoint(gw, event)
    assert_well_formed(response)
    assert response["statusCode"] < 500, response["body"]
    if response["statusCode"] == 200 and called:
        assert response["body"] == '{"outputs": "ok"}'


@PROPERTY_SETTINGS
@given(event=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()), json_value))
def test_anything_that_is_not_an_event_is_a_400(gw, event) -> None:
    response, called = run_with_healthy_endpoint(gw, event)
    assert_well_formed(response)
    assert 400 <= response["statusCode"] < 500
    assert not called


@PROPERTY_SETTINGS
@given(texts=st.lists(st.text(min_size=1), min_size=1, max_size=8))
def test_valid_text_batches_reach_the_endpoint_intact_and_in_order(gw, texts) -> None:
    ev = load_event("apigw_rest_v1_predict_texts.json")
    ev["body"] = json.dumps({"texts": texts})
    sent: list[bytes] = []
    gw.stubber.deactivate()
    stubber = Stubber(gw.client)
    answer = json.dumps({"predictions": list(range(len(texts)))})
    stubber.add_response("invoke_endpoint", invoke_response(answer))
    gw.client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(params["Body"]),
        unique_id="capture-body",
    )
    try:
        with stubber:
            response = gw.handle(ev)
    finally:
        gw.client.meta.events.unregister(
            "before-parameter-build.sagemaker-runtime.InvokeEndpoint", unique_id="capture-body"
        )
    assert response["statusCode"] == 200
    assert json.loads(sent[0]) == {"instances": texts}
    assert json.loads(response["body"])["predictions"] == list(range(len(texts)))

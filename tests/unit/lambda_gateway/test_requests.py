"""Routing, the accepted request shapes and exactly what reaches the endpoint (Stubber-checked)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.lambda_gateway import (
    PNG,
    error_of,
    json_event,
    load_event,
    make_event,
)

PNG_B64 = base64.b64encode(PNG).decode()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 32


def sent(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


# --- the real event samples ---------------------------------------------------------------------
def test_rest_v1_instances_sample_is_forwarded_byte_for_byte(gw) -> None:
    ev = load_event("apigw_rest_v1_predict_instances.json")
    gw.expect_invoke(
        ev["body"].encode(),
        inference_id=ev["requestContext"]["requestId"],
        response_body=b'{"predictions": [[0.1], [0.9]]}',
    )
    response = gw.handle(ev)
    gw.stubber.assert_no_pending_responses()
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"predictions": [[0.1], [0.9]]}
    assert response["headers"]["X-Request-Id"] == ev["requestContext"]["requestId"]
    assert response["isBase64Encoded"] is False


def test_rest_v1_png_sample_is_forwarded_as_image_bytes(gw) -> None:
    ev = load_event("apigw_rest_v1_predict_png.json")
    gw.expect_invoke(base64.b64decode(ev["body"]), "image/png")
    assert gw.handle(ev)["statusCode"] == 200
    gw.stubber.assert_no_pending_responses()


def test_rest_texts_sample_becomes_instances(gw) -> None:
    ev = load_event("apigw_rest_v1_predict_texts.json")
    texts = json.loads(ev["body"])["texts"]
    gw.expect_invoke(sent({"instances": texts}), response_body='{"predictions": ["pos", "neg"]}')
    response = gw.handle(ev)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"] == ["pos", "neg"]


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8"])
def test_text_plain_is_one_text_instance_as_the_openapi_document_says(gw, content_type) -> None:
    # Given a text model's client sending one text as text/plain (model_export/README.md)
    text = "@airline the crew was great, 10/10 ✈"
    gw.expect_invoke(sent({"instances": [text]}), response_body='{"predictions": ["positive"]}')

    # When the API gets it
    response = gw.handle(make_event(text, content_type))

    # Then the endpoint got {"instances": [text]}, as for {"text": ...}
    assert response["statusCode"] == 200
    gw.stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("body", "is_base64", "message"),
    [
        ("   ", False, "blank"),
        (base64.b64encode(b"caf\xe9").decode(), True, "not UTF-8"),
    ],
)
def test_bad_text_plain_bodies_are_400(gw, body, is_base64, message) -> None:
    response = gw.handle(make_event(body, "text/plain", is_base64=is_base64))
    assert response["statusCode"] == 400
    assert message in error_of(response)["message"]


def test_rest_image_json_sample_becomes_b64_instance(gw) -> None:
    ev = load_event("apigw_rest_v1_predict_image_json.json")
    image = json.loads(ev["body"])["image"]
    gw.expect_invoke(sent({"instances": [{"b64": image}]}))
    assert gw.handle(ev)["statusCode"] == 200


def test_rest_jpeg_sample_is_forwarded_as_image_bytes(gw) -> None:
    ev = load_event("apigw_rest_v1_predict_jpeg.json")
    gw.expect_invoke(base64.b64decode(ev["body"]), "image/jpeg")
    assert gw.handle(ev)["statusCode"] == 200


@pytest.mark.parametrize("name", ["apigw_rest_v1_health.json"])
def test_health_answers_without_calling_the_endpoint(gw, name: str) -> None:
    response = gw.handle(load_event(name))  # no stubbed response: a call would fail the test
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}


# --- accepted shapes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "forwarded", "inputs"),
    [
        ({"image": PNG_B64}, {"instances": [{"b64": PNG_B64}]}, 1),
        ({"image": f"data:image/png;base64,{PNG_B64}"}, {"instances": [{"b64": PNG_B64}]}, 1),
        ({"images": [PNG_B64, PNG_B64]}, {"instances": [{"b64": PNG_B64}] * 2}, 2),
        ({"text": "great flight"}, {"instances": ["great flight"]}, 1),
        ({"texts": ["a", "b", "c"]}, {"instances": ["a", "b", "c"]}, 3),
    ],
)
def test_convenience_shapes_become_one_batched_invocation(gw, doc, forwarded, inputs) -> None:
    predictions = list(range(inputs))
    gw.expect_invoke(sent(forwarded), response_body=json.dumps({"predictions": predictions}))
    response = gw.handle(json_event(doc))
    gw.stubber.assert_no_pending_responses()
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"] == predictions


def test_line_wrapped_base64_is_accepted(gw) -> None:
    wrapped = "\n".join(PNG_B64[i : i + 20] for i in range(0, len(PNG_B64), 20))
    gw.expect_invoke(sent({"instances": [{"b64": PNG_B64}]}))
    assert gw.handle(json_event({"image": wrapped}))["statusCode"] == 200


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": [{"x": 1}], "signature_name": "serving_default"},
        {"inputs": {"text": ["a", "b"]}},
    ],
)
def test_sagemaker_shapes_pass_through_unchanged(gw, doc) -> None:
    body = json.dumps(doc)
    gw.expect_invoke(body.encode(), response_body='{"outputs": [1, 2]}')
    assert gw.handle(make_event(body))["statusCode"] == 200


def test_json_goes_out_in_the_configured_content_type(make_gateway) -> None:
    gw = make_gateway(ENDPOINT_CONTENT_TYPE="application/jsonlines")
    gw.expect_invoke(sent({"instances": ["hi"]}), "application/jsonlines")
    assert gw.handle(json_event({"text": "hi"}))["statusCode"] == 200


def test_json_with_utf8_charset_is_accepted(gw) -> None:
    gw.expect_invoke(sent({"instances": ["héllo"]}))
    ev = json_event({"text": "héllo"}, content_type="application/json; charset=UTF-8")
    assert gw.handle(ev)["statusCode"] == 200


@pytest.mark.parametrize("media_type", ["image/png", "image/jpeg"])
def test_raw_image_keeps_its_content_type(gw, media_type: str) -> None:
    data = PNG if media_type == "image/png" else JPEG
    gw.expect_invoke(data, media_type)
    ev = make_event(base64.b64encode(data).decode(), media_type, is_base64=True)
    assert gw.handle(ev)["statusCode"] == 200


def test_accept_is_passed_on_and_the_answer_keeps_the_endpoint_content_type(gw) -> None:
    gw.expect_invoke(
        sent({"instances": ["x"]}),
        accept="text/csv",
        response_body="0.9\n",
        response_type="text/csv",
    )
    response = gw.handle(json_event({"text": "x"}, headers={"Accept": "text/csv"}))
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/csv"
    assert response["body"] == "0.9\n"


def test_no_accept_header_means_none_is_sent(gw) -> None:
    ev = json_event({"text": "x"})
    del ev["headers"]["Accept"]
    gw.expect_invoke(sent({"instances": ["x"]}), accept=None)
    assert gw.handle(ev)["statusCode"] == 200


def test_an_empty_accept_header_counts_as_none(gw) -> None:
    gw.expect_invoke(sent({"instances": ["x"]}), accept=None)
    assert gw.handle(json_event({"text": "x"}, headers={"Accept": " "}))["statusCode"] == 200


def test_a_base64_encoded_json_body_is_decoded_first(gw) -> None:
    body = json.dumps({"instances": [[1, 2]]})
    gw.expect_invoke(body.encode())
    ev = make_event(base64.b64encode(body.encode()).decode(), is_base64=True)
    assert gw.handle(ev)["statusCode"] == 200


def test_binary_answers_are_base64_encoded_for_api_gateway(gw) -> None:
    answer = b"\x93NUMPY\x01\x00binary"
    gw.expect_invoke(
        sent({"instances": ["x"]}), response_body=answer, response_type="application/x-npy"
    )
    response = gw.handle(json_event({"text": "x"}))
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == answer
    assert response["headers"]["Content-Type"] == "application/x-npy"


def test_an_http_api_v2_event_is_refused_not_half_understood(gw) -> None:
    # The stack deploys a REST API; a v2 event means a wrongly wired integration.
    ev = {"version": "2.0", "routeKey": "GET /health", "rawPath": "/health"}
    response = gw.handle(ev)
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "InvalidEvent"
    assert "REST API proxy event" in error_of(response)["message"]


def test_rest_v1_proxy_resource_routes_by_path(gw) -> None:
    ev = make_event(None, None, method="GET", path="/health")
    ev["resource"] = "/{proxy+}"
    ev["path"] = "/health/"
    assert gw.handle(ev)["statusCode"] == 200


# --- the answer maps back to the inputs ---------------------------------------------------------
def test_a_wrong_number_of_predictions_is_a_bad_gateway(gw) -> None:
    gw.expect_invoke(sent({"instances": ["a", "b"]}), response_body='{"predictions": [1]}')
    response = gw.handle(json_event({"texts": ["a", "b"]}))
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "BadModelResponse"
    assert "1 predictions for 2 inputs" in error["message"]


# --- client faults: 4xx, with a message that says what to send ----------------------------------
@pytest.mark.parametrize(
    ("body", "code", "hint"),
    [
        ("{not json", "InvalidJson", '{"instances": [...]}'),
        ('{"x": NaN, "instances": [1]}', "InvalidJson", "NaN"),
        ("[1, 2, 3]", "InvalidInput", '{"instances": [...]}'),
        ('{"data": [1]}', "InvalidInput", "found none"),
        ('{"instances": [1], "text": "a"}', "InvalidInput", "found instances, text"),
        ('{"instances": []}', "InvalidInput", "non-empty JSON array"),
        ('{"instances": {"a": 1}}', "InvalidInput", "non-empty JSON array"),
        ('{"inputs": null}', "InvalidInput", "must not be empty"),
        ('{"image": "not base64!"}', "InvalidInput", "base64"),
        ('{"image": 5}', "InvalidInput", "non-empty base64 string"),
        ('{"images": []}', "InvalidInput", "non-empty JSON array"),
        ('{"images": ["aGk=", "%%%"]}', "InvalidInput", '"images"[1]'),
        ('{"text": ""}', "InvalidInput", "non-empty string"),
        ('{"text": "a", "threshold": 0.5}', "InvalidInput", "unexpected keys ['threshold']"),
        ('{"texts": ["a", 3]}', "InvalidInput", '"texts"[1]'),
        ("[" * 100_000, "InvalidJson", "not valid JSON"),
    ],
)
def test_bad_json_requests_get_400_saying_what_is_expected(gw, body, code, hint) -> None:
    response = gw.handle(make_event(body))
    assert response["statusCode"] == 400
    error = error_of(response)
    assert error["code"] == code
    assert hint in error["message"]


def test_empty_body_is_400(gw) -> None:
    response = gw.handle(make_event(None))
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "EmptyBody"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/html",
        "application/x-www-form-urlencoded",
        "image/gif",
        "application/json; charset=latin-1",
    ],
)
def test_unsupported_content_type_is_415(gw, content_type) -> None:
    response = gw.handle(make_event('{"text": "a"}', content_type))
    assert response["statusCode"] == 415
    error = error_of(response)
    assert error["code"] == "UnsupportedMediaType"
    assert "application/json" in error["message"] or "UTF-8" in error["message"]


def test_an_image_body_that_is_not_that_image_is_400(gw) -> None:
    ev = make_event(base64.b64encode(PNG).decode(), "image/jpeg", is_base64=True)
    response = gw.handle(ev)
    assert response["statusCode"] == 400
    assert "not a JPEG image" in error_of(response)["message"]


def test_body_over_the_limit_is_413_before_any_call(make_gateway) -> None:
    gw = make_gateway(MAX_PAYLOAD_BYTES="1000")
    # No stubbed response: reaching the endpoint would fail with a different status.
    too_big = json_event({"texts": ["x" * 600, "y" * 600]})
    response = gw.handle(too_big)
    assert response["statusCode"] == 413
    assert "at most 1000 bytes" in error_of(response)["message"]
    image = make_event(base64.b64encode(PNG + b"\0" * 2000).decode(), "image/png", is_base64=True)
    assert gw.handle(image)["statusCode"] == 413


def test_default_limit_is_the_endpoint_6_mib(gw) -> None:
    body = base64.b64encode(PNG + b"\0" * (6 * 1024 * 1024)).decode()
    response = gw.handle(make_event(body, "image/png", is_base64=True))
    assert response["statusCode"] == 413


def test_unknown_route_is_404_and_wrong_method_is_405_with_allow(gw) -> None:
    response = gw.handle(make_event(None, None, method="GET", path="/models"))
    assert response["statusCode"] == 404
    assert error_of(response)["code"] == "NotFound"
    response = gw.handle(make_event(None, None, method="GET", path="/predict"))
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST, OPTIONS"
    assert "use POST" in error_of(response)["message"]
    response = gw.handle(make_event("{}", method="DELETE", path="/health"))
    assert response["statusCode"] == 405


def test_invalid_accept_header_is_400(gw) -> None:
    response = gw.handle(json_event({"text": "a"}, headers={"Accept": "x" * 2000}))
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "InvalidHeader"


def test_header_values_with_line_breaks_never_reach_the_endpoint(gw) -> None:
    response = gw.handle(
        json_event({"text": "a"}, headers={"Accept": "application/json\nX-Injected: 1"})
    )
    assert response["statusCode"] == 400
    ev = json_event({"text": "a"})
    ev["requestContext"]["requestId"] = "abc\n"
    gw.expect_invoke(sent({"instances": ["a"]}), inference_id=None)  # sent without an id
    assert gw.handle(ev)["statusCode"] == 200


def test_a_non_event_is_400(gw) -> None:
    response = gw.handle(["not", "an", "event"])
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "InvalidEvent"


# --- CORS ---------------------------------------------------------------------------------------
def test_cors_off_sends_no_cors_headers(gw) -> None:
    response = gw.handle(make_event("{bad"))
    assert not any(name.startswith("Access-Control") for name in response["headers"])


def test_cors_headers_on_every_response_errors_included(make_gateway) -> None:
    gw = make_gateway(CORS_ALLOW_ORIGIN="https://app.example.com")
    gw.expect_invoke(sent({"instances": ["a"]}))
    responses = [
        gw.handle(json_event({"text": "a"})),
        gw.handle(make_event("{bad")),
        gw.handle(make_event(None, None, method="GET", path="/nope")),
        gw.handle(make_event(None, None, method="GET", path="/health")),
    ]
    assert [r["statusCode"] for r in responses] == [200, 400, 404, 200]
    for response in responses:
        assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert response["headers"]["Vary"] == "Origin"


def test_preflight_answers_204_with_allowed_methods(make_gateway) -> None:
    gw = make_gateway(CORS_ALLOW_ORIGIN="*")
    response = gw.handle(make_event(None, None, method="OPTIONS", path="/predict"))
    assert response["statusCode"] == 204
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    assert response["headers"]["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "Content-Type" in response["headers"]["Access-Control-Allow-Headers"]

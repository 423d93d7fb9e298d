"""Structured logs and EMF metrics: what an operator sees per request, and never the payload."""

from __future__ import annotations

import json

from tests.support.lambda_gateway import json_event, make_event

SECRET = "patient-record-4711"


def emf_blobs(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def metric_names(blob: dict) -> set[str]:
    return {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_one_log_line_per_request_with_its_facts_and_never_the_payload(gw, capsys) -> None:
    gw.expect_invoke(
        json.dumps({"instances": [SECRET, SECRET]}, separators=(",", ":")).encode(),
        response_body=json.dumps({"predictions": [SECRET, SECRET]}),
    )
    ev = json_event({"texts": [SECRET, SECRET]})
    assert gw.handle(ev)["statusCode"] == 200
    records = [r for r in gw.log_records() if r["message"] == "request"]
    assert len(records) == 1
    record = records[0]
    assert record["request_id"] == ev["requestContext"]["requestId"]
    assert record["route"] == "/predict" and record["method"] == "POST"
    assert record["status"] == 200
    assert record["inputs"] == 2 and record["input_shape"] == "texts"
    assert record["payload_bytes"] == len(
        json.dumps({"instances": [SECRET, SECRET]}).replace(" ", "")
    )
    assert record["latency_ms"] >= record["endpoint_ms"] >= 0
    assert record["cold_start"] is True
    assert SECRET not in gw.log.getvalue()
    assert SECRET not in capsys.readouterr().out


def test_latency_metrics_in_embedded_metric_format(gw, capsys) -> None:
    gw.expect_invoke(b'{"instances":["a"]}')
    gw.handle(json_event({"text": "a"}))
    gw.handle(make_event(None, None, method="GET", path="/health"))
    blobs = emf_blobs(capsys.readouterr().out)
    assert len(blobs) == 2
    first, second = blobs
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MlServingTest"
    assert {"Latency", "EndpointLatency", "ColdStart"} <= metric_names(first)
    assert metric_names(second) == {"Latency"}  # /health never calls the endpoint
    assert first["service"] == "prediction-api"


def test_errors_are_counted_by_code(gw, capsys) -> None:
    gw.handle(make_event("{broken"))
    gw.handle(make_event("x", "text/html"))
    blobs = emf_blobs(capsys.readouterr().out)
    by_code = [b for b in blobs if "ErrorsByCode" in metric_names(b)]
    assert [b["ErrorCode"] for b in by_code] == ["InvalidJson", "UnsupportedMediaType"]
    assert by_code[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "ErrorCode"]]
    statuses = [r["status"] for r in gw.log_records() if r["message"] == "request"]
    assert statuses == [400, 415]

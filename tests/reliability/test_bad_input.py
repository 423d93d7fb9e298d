"""Malformed requests (schemathesis over the published OpenAPI description, raw
probes, a fuzz of the Lambda handler) get documented 4xx answers: no 5xx, no crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability import bad_input


@pytest.mark.slow
def test_bad_input_gets_documented_client_errors_and_never_a_5xx_or_a_crash(tmp_path: Path):
    section = bad_input.run(quick=True, workdir=tmp_path)

    assert section.passed, section.failures()
    # The scenario really sent what it reports: HTTP through the stage and events to the handler.
    http, checks, probes, fuzz, codes = section.tables
    assert http.rows[0][1] > 50 and http.rows[1][1] == len(bad_input.probes())
    assert dict((row[0], row[1]) for row in checks.rows)["ignored_auth"] > 0
    assert fuzz.rows[0][0] == bad_input.QUICK["fuzz_events"]
    # The fuzz reached both of the handler's paths: non-events refused, REST events parsed.
    assert {"InvalidEvent", "UnsupportedMediaType"} <= {row[0] for row in codes.rows}


def test_the_error_shape_check_accepts_the_documented_body_and_nothing_else():
    good = {"error": {"code": "InvalidInput", "message": "no"}, "requestId": "r-1"}

    assert bad_input.error_body_problem(400, "application/json", json.dumps(good)) is None
    assert bad_input.error_body_problem(200, "text/plain", "anything") is None
    # API Gateway's default error body, were a GatewayResponse missing:
    assert "Error schema" in bad_input.error_body_problem(
        403, "application/json", '{"message": "Forbidden"}'
    )
    assert "Error schema" in bad_input.error_body_problem(
        400, "application/json", json.dumps({**good, "error": {"code": "Oops", "message": "x"}})
    )
    assert "text/plain" in bad_input.error_body_problem(413, "text/plain", "Request too large")
    assert "not JSON" in bad_input.error_body_problem(500, "application/json", "<html>")

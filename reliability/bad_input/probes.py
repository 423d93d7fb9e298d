"""Raw HTTP probes: requests schemathesis cannot express, each with the status it must get."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import requests

from reliability.bad_input.error_body import HTTP_TIMEOUT_S, HttpTally, error_body_problem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def probes() -> list[tuple[str, str, str, dict[str, str], bytes, set[int]]]:
    """(name, method, path, headers, body, acceptable statuses): what schemathesis cannot send."""
    json_ct = {"Content-Type": "application/json"}
    return [
        ("no API key", "POST", "/predict", {**json_ct, "x-api-key": ""}, b'{"text":"x"}', {403}),
        ("wrong API key", "POST", "/predict", {**json_ct, "x-api-key": "nope"}, b"{}", {403}),
        ("unknown route", "GET", "/nope", {}, b"", {404}),
        ("unknown method", "DELETE", "/predict", {}, b"", {404}),
        ("no body", "POST", "/predict", json_ct, b"", {400}),
        ("truncated JSON", "POST", "/predict", json_ct, b'{"texts": ["a"', {400}),
        ("invalid UTF-8 JSON", "POST", "/predict", json_ct, b'{"text": "\xff\xfe"}', {200, 400}),
        ("UTF-16 JSON", "POST", "/predict", json_ct, '{"text": "x"}'.encode("utf-16"), {400}),
        ("NaN in JSON", "POST", "/predict", json_ct, b'{"instances": [NaN]}', {400}),
        (
            "NUL and lone surrogate",
            "POST",
            "/predict",
            json_ct,
            b'{"text": "a\\u0000\\ud800"}',
            {200, 400},
        ),
        (
            "deep nesting",
            "POST",
            "/predict",
            json_ct,
            b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            {400},
        ),
        ("no Content-Type", "POST", "/predict", {}, b'{"text": "x"}', {200, 400, 415}),
        ("text/html", "POST", "/predict", {"Content-Type": "text/html"}, b"<p>hi</p>", {415}),
        # One text for a text model; the digits image model rejects it.
        ("text/plain", "POST", "/predict", {"Content-Type": "text/plain"}, b"hello", {400}),
        (
            "latin-1 charset",
            "POST",
            "/predict",
            {"Content-Type": "application/json; charset=latin-1"},
            b'{"text": "x"}',
            {415},
        ),
        (
            "PNG that is not one",
            "POST",
            "/predict",
            {"Content-Type": "image/png"},
            b"GIF89a" + bytes(64),
            {400},
        ),
        (
            "truncated PNG",
            "POST",
            "/predict",
            {"Content-Type": "image/png"},
            PNG_SIGNATURE + bytes(32),
            {400},
        ),
        ("bad base64 image", "POST", "/predict", json_ct, b'{"image": "not base64!"}', {400}),
        (
            "base64 of junk",
            "POST",
            "/predict",
            json_ct,
            b'{"image": "' + base64.b64encode(bytes(300)) + b'"}',
            {400},
        ),
        ("wrong types", "POST", "/predict", json_ct, b'{"texts": [1, 2]}', {400}),
        ("two input keys", "POST", "/predict", json_ct, b'{"text": "a", "image": "AAAA"}', {400}),
        (
            "non-ASCII Accept",
            "POST",
            "/predict",
            {**json_ct, "Accept": "application/j\u00e9son".encode().decode("latin-1")},
            b'{"text": "x"}',
            {400, 406},
        ),
        (
            "unsupported Accept",
            "POST",
            "/predict",
            {**json_ct, "Accept": "text/html"},
            b'{"instances": [{"b64": "AAAA"}]}',
            {400, 406},
        ),
        (
            "7 MB of text",
            "POST",
            "/predict",
            json_ct,
            b'{"texts": ["' + b"a" * (7 * 2**20) + b'"]}',
            {413},
        ),
        (
            "11 MB body",
            "POST",
            "/predict",
            json_ct,
            b'{"texts": ["' + b"a" * (11 * 2**20) + b'"]}',
            {413},
        ),
        (
            "11 MB PNG",
            "POST",
            "/predict",
            {"Content-Type": "image/png"},
            PNG_SIGNATURE + bytes(11 * 2**20),
            {413},
        ),
        (
            "8 MB of images",
            "POST",
            "/predict",
            json_ct,
            b'{"images": ["' + b"A" * (8 * 2**20) + b'"]}',
            {413},
        ),
    ]


@dataclass
class ProbeOutcome:
    name: str
    status: int | None
    expected: set[int]
    problem: str | None


def run_probes(url: str, api_key: str, tally: HttpTally) -> list[ProbeOutcome]:
    outcomes = []
    with requests.Session() as http:
        for name, method, path, headers, body, expected in probes():
            sent = {"x-api-key": api_key, **headers}
            if sent["x-api-key"] == "":
                del sent["x-api-key"]
            try:
                resp = http.request(
                    method, url + path, headers=sent, data=body, timeout=HTTP_TIMEOUT_S
                )
            except requests.RequestException as err:
                outcomes.append(ProbeOutcome(name, None, expected, f"no answer: {err!r}"))
                continue
            tally.add(
                f"probe {name!r}", resp.status_code, resp.headers.get("Content-Type"), resp.content
            )
            problem = error_body_problem(
                resp.status_code, resp.headers.get("Content-Type"), resp.content
            )
            if resp.status_code not in expected:
                problem = (
                    f"status {resp.status_code}, expected {sorted(expected)}: {resp.text[:200]!r}"
                )
            outcomes.append(ProbeOutcome(name, resp.status_code, expected, problem))
    return outcomes

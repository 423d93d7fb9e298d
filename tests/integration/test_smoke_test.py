"""The deploy workflow's smoke test (.github/scripts/smoke_test.py) against a local HTTP API.

The stand-in API on 127.0.0.1 behaves like the deployed one (API key on /predict, the digits
model's answer format) and can be told to answer wrongly, to leave the key unchecked, or to fail
a few times first, so each check is seen to pass and to fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "smoke_test.py"
DIGITS_CASE = ROOT / ".github" / "smoke" / "digits.json"
KEY = "test-key-0123456789"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while it runs
    spec.loader.exec_module(module)
    return module


smoke = load_script()


class FakeApi(ThreadingHTTPServer):
    """The prediction API's contract: /health, /predict behind x-api-key, JSON answers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.expected_labels: dict[str, str] = {}  # request body -> label to answer
        self.wrong = False
        self.check_key = True
        self.fail_first = 0  # answer 503 this many times first
        self.requests: list[tuple[str, str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/prod/"


class Handler(BaseHTTPRequestHandler):
    server: FakeApi

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(("GET", self.path, self.headers.get("x-api-key")))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            return self._send(503, {"message": "Service Unavailable"})
        if self.path == "/prod/health":
            return self._send(200, {"status": "ok"})
        return self._send(404, {"message": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(("POST", self.path, self.headers.get("x-api-key")))
        if self.path != "/prod/predict":
            return self._send(404, {"message": "Not Found"})
        if self.server.check_key and self.headers.get("x-api-key") != KEY:
            return self._send(403, {"message": "Forbidden"})
        label = self.server.expected_labels.get(body.decode(), "?")
        if self.server.wrong:
            label = "1" if label != "1" else "2"
        return self._send(200, {"predictions": [{"label": label, "probability": 0.97}]})


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    for prediction in smoke.load_case(DIGITS_CASE):
        server.expected_labels[prediction.body.decode()] = prediction.equals
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run(api_url: str, **kwargs: Any) -> list[str]:
    return smoke.run_checks(
        api_url,
        KEY,
        smoke.load_case(DIGITS_CASE),
        attempts=kwargs.pop("attempts", 3),
        retry_delay_s=0,
        timeout_s=5,
        **kwargs,
    )


def test_passes_against_a_correct_api(api):
    passed = run(api.url)
    assert passed[0] == "GET health: 200"
    assert passed[1] == "POST predict without key: refused (403)"
    assert [p.split(" = ")[-1] for p in passed[2:]] == ["'3'", "'7'"]
    # The key went with every keyed request and was missing from the anonymous one.
    keys = [key for method, _, key in api.requests if method == "POST"]
    assert keys == [None, KEY, KEY]


def test_a_wrong_answer_fails(api):
    api.wrong = True
    with pytest.raises(smoke.CheckFailed, match=r"wrong answer, predictions.0.label = '1'"):
        run(api.url)


def test_an_api_that_does_not_require_the_key_fails(api):
    api.check_key = False
    with pytest.raises(smoke.CheckFailed, match="open to anyone"):
        run(api.url)


def test_transient_errors_are_retried(api):
    api.fail_first = 2
    assert run(api.url, attempts=3)[0] == "GET health: 200"
    assert [path for _, path, _ in api.requests[:3]] == ["/prod/health"] * 3


def test_persistent_errors_fail_after_the_attempts(api):
    api.fail_first = 10
    with pytest.raises(smoke.CheckFailed, match="still failing after 2 tries"):
        run(api.url, attempts=2)


def test_a_missing_route_fails_without_retries(api):
    with pytest.raises(smoke.CheckFailed, match="HTTP 404"):
        run(api.url.replace("/prod/", "/wrong/"))
    assert len(api.requests) == 1


def test_refuses_to_send_the_key_over_plain_http_to_another_host():
    with pytest.raises(smoke.UsageError, match="plain http"):
        smoke.check_url("http://example.com/prod/")
    assert smoke.check_url("https://abc.execute-api.us-east-1.amazonaws.com/prod") == (
        "https://abc.execute-api.us-east-1.amazonaws.com/prod/"
    )


def test_json_path_reads_nested_values_and_reports_what_is_missing():
    document = {"predictions": [{"label": "3"}]}
    assert smoke.json_path(document, "predictions.0.label") == "3"
    assert smoke.json_path(document, "predictions.-1.label") == "3"
    with pytest.raises(smoke.CheckFailed, match="stopped at '1'"):
        smoke.json_path(document, "predictions.1.label")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ({}, "non-empty 'predictions'"),
        ({"predictions": [{"body": {}, "equals": "3"}]}, "lacks \\['path'\\]"),
        ({"predictions": [{"path": "a", "equals": 1}]}, "exactly one of"),
        ({"predictions": [{"body_file": "x.png", "path": "a", "equals": 1}]}, "cannot read"),
    ],
)
def test_bad_case_files_are_refused_with_the_reason(tmp_path, case, message):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    with pytest.raises(smoke.UsageError, match=message):
        smoke.load_case(path)


def test_body_file_cases_send_the_file_with_its_content_type(tmp_path):
    (tmp_path / "seven.png").write_bytes(b"\x89PNG fake")
    case = {
        "predictions": [
            {
                "body_file": "seven.png",
                "content_type": "image/png",
                "path": "predictions.0.label",
                "equals": "7",
            }
        ]
    }
    (tmp_path / "case.json").write_text(json.dumps(case))
    (prediction,) = smoke.load_case(tmp_path / "case.json")
    assert prediction.body == b"\x89PNG fake" and prediction.content_type == "image/png"


# --- the command line, as the workflow runs it ------------------------------------------------


def cli(args: list[str], key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != smoke.API_KEY_ENV}
    if key is not None:
        env[smoke.API_KEY_ENV] = key
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--retry-delay-s", "0", "--attempts", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_reads_the_url_from_cdk_outputs_and_exits_0(api, tmp_path):
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps({"MlServing-dev-digits": {"ApiUrl": api.url, "ApiKeyId": "k"}}))
    args = ["--outputs-file", str(outputs), "--stack", "MlServing-dev-digits"]
    result = cli([*args, "--case", str(DIGITS_CASE)], KEY)
    assert result.returncode == 0, result.stderr
    assert "smoke test passed: 4 checks" in result.stdout
    assert KEY not in result.stdout + result.stderr


def test_cli_exits_1_on_a_wrong_answer(api):
    api.wrong = True
    result = cli(["--api-url", api.url, "--case", str(DIGITS_CASE)], KEY)
    assert result.returncode == 1
    assert "smoke test FAILED" in result.stderr and "wrong answer" in result.stderr


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (["--api-url", "https://x.example/prod/"], None, "set SMOKE_API_KEY"),
        (["--outputs-file", "missing.json", "--stack", "S"], KEY, "cannot read missing.json"),
    ],
)
def test_cli_exits_2_on_bad_usage(args, key, message):
    result = cli([*args, "--case", str(DIGITS_CASE)], key)
    assert result.returncode == 2
    assert message in result.stderr

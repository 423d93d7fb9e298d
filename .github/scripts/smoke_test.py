#!/usr/bin/env python3
"""Smoke-test a deployed prediction API: health, API-key enforcement, known predictions.

    export SMOKE_API_KEY=$(aws apigateway get-api-key --api-key <ApiKeyId> --include-value \\
        --query value --output text)
    python .github/scripts/smoke_test.py --outputs-file cdk-outputs.json \\
        --stack MlServing-dev-digits --case .github/smoke/digits.json

Checks, in order: ``GET <ApiUrl>health`` answers 200; ``POST <ApiUrl>predict`` without the key is
refused (401/403); each request in the case file, sent with the key, answers 200 with JSON whose
value at the case's ``path`` equals ``equals``. Throttling, 5xx and connection errors are retried
(a fresh stage can take a few seconds to answer); a wrong answer is not.

A case file (JSON, one per model, paths relative to the file)::

    {"predictions": [{"name": "a three", "body_file": "digits/three.png",
                      "content_type": "image/png", "path": "label", "equals": "3"}]}

``body`` (any JSON value, sent as application/json) may stand in for ``body_file``.

The key comes from the environment (``SMOKE_API_KEY``), never from a flag, so it stays out of
process listings and CI logs. Standard library only: runs on a bare runner or a laptop.
Exit status: 0 all checks passed, 1 a check failed, 2 bad usage or case file.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("smoke_test")

API_KEY_ENV = "SMOKE_API_KEY"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# API Gateway gives up on an integration after 29 s; wait a little longer than that.
DEFAULT_TIMEOUT_S = 35.0


class UsageError(Exception):
    """Bad flags, environment or case file: exit 2."""


class CheckFailed(Exception):
    """The API answered, wrongly: exit 1."""


@dataclass(frozen=True)
class Prediction:
    name: str
    body: bytes
    content_type: str
    path: str
    equals: Any


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--api-url", help="the API's base URL (the stack's ApiUrl output)")
    where.add_argument(
        "--outputs-file",
        type=Path,
        help="read ApiUrl from this `cdk deploy --outputs-file` JSON (needs --stack)",
    )
    parser.add_argument(
        "--stack", help="stack name inside --outputs-file, e.g. MlServing-dev-digits"
    )
    parser.add_argument("--case", type=Path, required=True, help="the model's smoke case JSON file")
    parser.add_argument(
        "--attempts", type=int, default=6, help="tries per request on throttling/5xx/network errors"
    )
    parser.add_argument(
        "--retry-delay-s", type=float, default=5.0, help="first wait between tries (doubles)"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="per-request timeout in seconds"
    )
    args = parser.parse_args(argv)
    if args.outputs_file and not args.stack:
        parser.error("--outputs-file needs --stack (the stack name, e.g. MlServing-dev-digits)")
    if args.attempts < 1:
        parser.error(f"--attempts must be at least 1, got {args.attempts}")
    if args.retry_delay_s < 0 or args.timeout_s <= 0:
        parser.error("--retry-delay-s must be >= 0 and --timeout-s > 0")
    return args


def api_url_from_outputs(outputs_file: Path, stack: str) -> str:
    """The ``ApiUrl`` output of ``stack`` in a ``cdk deploy --outputs-file`` JSON file."""
    try:
        outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {outputs_file} as JSON: {exc}") from exc
    stack_outputs = outputs.get(stack) if isinstance(outputs, dict) else None
    if not isinstance(stack_outputs, dict):
        stacks = sorted(outputs) if isinstance(outputs, dict) else []
        raise UsageError(f"{outputs_file} has no stack {stack!r} (it has {stacks})")
    url = stack_outputs.get("ApiUrl")
    if not isinstance(url, str) or not url:
        raise UsageError(f"stack {stack!r} in {outputs_file} has no ApiUrl output")
    return url


def check_url(url: str) -> str:
    """``url`` with a trailing slash; refuses plain http except to this machine (the key)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"API URL must be an https:// URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(f"refusing to send the API key over plain http to {parts.hostname}")
    return url if url.endswith("/") else url + "/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_case(path: Path) -> list[Prediction]:
    """The predictions a case file asks for, validated."""
    try:
        case = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read smoke case {path} as JSON: {exc}") from exc
    items = case.get("predictions") if isinstance(case, dict) else None
    if not isinstance(items, list) or not items:
        raise UsageError(f"{path}: needs a non-empty 'predictions' list")
    predictions = []
    for i, item in enumerate(items):
        where = f"{path}: predictions[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where} must be an object")
        missing = [k for k in ("path", "equals") if k not in item]
        if missing:
            raise UsageError(f"{where} lacks {missing}: say where in the answer to look and what")
        if ("body" in item) == ("body_file" in item):
            raise UsageError(f"{where} needs exactly one of 'body' (JSON) or 'body_file'")
        if "body_file" in item:
            body_path = path.parent / str(item["body_file"])
            try:
                body = body_path.read_bytes()
            except OSError as exc:
                raise UsageError(f"{where}: cannot read body_file {body_path}: {exc}") from exc
            content_type = item.get("content_type")
            if not isinstance(content_type, str) or not content_type:
                raise UsageError(f"{where}: body_file needs a 'content_type'")
        else:
            body = json.dumps(item["body"]).encode()
            content_type = str(item.get("content_type", "application/json"))
        predictions.append(
            Prediction(
                name=str(item.get("name", f"prediction {i}")),
                body=body,
                content_type=content_type,
                path=str(item["path"]),
                equals=item["equals"],
            )
        )
    return predictions


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``predictions.0.label``; integers index lists)."""
    value = document
    for part in path.split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            raise CheckFailed(f"the answer has nothing at {path!r} (stopped at {part!r})")
    return value


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout_s: float,
) -> Response:
    """One HTTP request; an HTTP error status is a Response, a network failure raises OSError."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 (scheme checked by check_url)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            return Response(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(exc.code, exc.read(), exc.headers.get("Content-Type", ""))


def with_retries(
    send: Callable[[], Response],
    *,
    what: str,
    attempts: int,
    delay_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Response:
    """``send()`` until it answers something other than throttling/5xx, at most ``attempts``."""
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            response = send()
        except OSError as exc:  # URLError, timeouts, refused connections
            last = f"network error: {getattr(exc, 'reason', exc)}"
        else:
            if response.status not in RETRYABLE_STATUS:
                return response
            last = f"HTTP {response.status}: {_snippet(response.body)}"
        if attempt < attempts:
            wait_s = delay_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retrying in %.0f s (%d/%d)", what, last, wait_s, attempt, attempts)
            sleep(wait_s)
    raise CheckFailed(f"{what}: still failing after {attempts} tries ({last})")


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def run_checks(
    api_url: str,
    api_key: str,
    predictions: Sequence[Prediction],
    *,
    attempts: int = 6,
    retry_delay_s: float = 5.0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """Run every check; return one line per passed check, raise CheckFailed on the first failure."""
    base = check_url(api_url)
    passed = []

    def call(what: str, method: str, route: str, **kwargs: Any) -> Response:
        return with_retries(
            lambda: request(method, base + route, timeout_s=timeout_s, **kwargs),
            what=what,
            attempts=attempts,
            delay_s=retry_delay_s,
        )

    # The key goes along in case the stage guards /health too; it is checked without it below.
    health = call("GET health", "GET", "health", headers={"x-api-key": api_key})
    if health.status != 200:
        raise CheckFailed(f"GET health answered HTTP {health.status}: {_snippet(health.body)}")
    passed.append("GET health: 200")

    first = predictions[0]
    anonymous = call(
        "POST predict without key",
        "POST",
        "predict",
        headers={"Content-Type": first.content_type},
        body=first.body,
    )
    if anonymous.status not in (401, 403):
        raise CheckFailed(
            f"POST predict without an API key answered HTTP {anonymous.status}, expected 401/403: "
            "the API is open to anyone"
        )
    passed.append(f"POST predict without key: refused ({anonymous.status})")

    for prediction in predictions:
        what = f"POST predict ({prediction.name})"
        response = call(
            what,
            "POST",
            "predict",
            headers={
                "Content-Type": prediction.content_type,
                "Accept": "application/json",
                "x-api-key": api_key,
            },
            body=prediction.body,
        )
        if response.status != 200:
            raise CheckFailed(f"{what} answered HTTP {response.status}: {_snippet(response.body)}")
        try:
            answer = json.loads(response.body)
        except json.JSONDecodeError as exc:
            raise CheckFailed(f"{what} answered non-JSON: {_snippet(response.body)}") from exc
        got = json_path(answer, prediction.path)
        if got != prediction.equals:
            raise CheckFailed(
                f"{what}: wrong answer, {prediction.path} = {got!r}, expected "
                f"{prediction.equals!r} (full answer: {_snippet(response.body)})"
            )
        passed.append(f"{what}: {prediction.path} = {got!r}")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        api_key = os.environ.get(API_KEY_ENV, "")
        if not api_key:
            raise UsageError(
                f"set {API_KEY_ENV} to the API key value (aws apigateway get-api-key "
                "--api-key <ApiKeyId> --include-value --query value --output text)"
            )
        api_url = args.api_url or api_url_from_outputs(args.outputs_file, args.stack)
        predictions = load_case(args.case)
        passed = run_checks(
            api_url,
            api_key,
            predictions,
            attempts=args.attempts,
            retry_delay_s=args.retry_delay_s,
            timeout_s=args.timeout_s,
        )
    except UsageError as exc:
        log.error("%s", exc)
        return 2
    except CheckFailed as exc:
        log.error("smoke test FAILED: %s", exc)
        return 1
    for line in passed:
        print(f"ok  {line}")
    print(f"smoke test passed: {len(passed)} checks against {api_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bad input: the published OpenAPI description fuzzed over HTTP, and the Lambda handler fuzzed
with malformed events.

1. **schemathesis** (v4, its Python engine) reads ``lambda_src/openapi.json`` (the document API
   Gateway's request model is built from) and runs its phases (explicit examples, coverage:
   boundary values, missing and wrong headers, no API key, negative bodies; hypothesis fuzzing)
   against the local stage serving the real digits model.
2. **Raw probes**: requests schemathesis cannot express (invalid UTF-8, a body over API Gateway's
   10 MB, a wrong charset, a missing Content-Type, ...) with the status each must get.
3. **Handler fuzz**: the unmodified ``lambda_src`` handler, imported in-process with the
   function's environment as the template sets it, gets hypothesis-generated events (REST v1 and
   HTTP API v2 samples from ``tests/events/`` mutated: missing or ``None`` fields, wrong types,
   huge bodies, bad base64, odd Unicode, odd headers). Its SageMaker client talks to the stage's
   runtime API and the real model (no stub), so what reaches the model is answered by the model.

Every answer with a status >= 400 must be the documented error body (validated with jsonschema
against the document's ``Error`` schema). Every request here is a client's fault against a healthy
stack, so any 5xx is a failure, as is an exception escaping the handler.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import requests

from local_stage import harness
from reliability.report import Section, Table
from stacks.openapi import OPENAPI_PATH, draft4_schema

log = logging.getLogger(__name__)

EVENTS = harness.REPO / "tests" / "events"
LAMBDA_SRC = harness.REPO / "lambda_src"
# High enough that schemathesis' bursts are never throttled (throttling is the load scenario's).
CONTEXT = {"throttle_rate_limit": "2000", "throttle_burst_limit": "4000"}
QUICK = {"schemathesis_examples": 8, "fuzz_events": 250}
FULL = {"schemathesis_examples": 100, "fuzz_events": 3000}
# Checks we leave out of schemathesis' defaults, and why (the notes repeat this).
EXCLUDED_CHECKS = {
    "positive_data_acceptance": "a schema-valid body is not always one the model can serve: "
    '`{"instances": [null]}` fits the published schema (instances are model-specific) and the '
    "model rightly answers 400 ModelRejectedInput",
    "unsupported_method": "API Gateway answers a method a resource does not define as an unknown "
    "route (our 404 NotFound GatewayResponse), never 405; the REST API cannot do otherwise "
    "without a mock method per resource",
}
HTTP_TIMEOUT_S = 60


def _error_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(draft4_schema("Error"))


def error_body_problem(status: int, content_type: str | None, body: bytes | str) -> str | None:
    """Why an error answer is not the documented error body; None when it is."""
    if status < 400:
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        return f"Content-Type {content_type!r}, not application/json"
    try:
        doc = json.loads(body)
    except ValueError as err:
        return f"body is not JSON ({err})"
    errors = sorted(_error_validator().iter_errors(doc), key=str)
    if errors:
        return f"body {str(body)[:200]!r} fails the Error schema: {errors[0].message}"
    return None


# --- 1. schemathesis ---------------------------------------------------------------------------


@dataclass
class HttpTally:
    """Counts over HTTP answers: statuses, 5xx and error bodies off the documented shape."""

    statuses: Counter[int] = field(default_factory=Counter)
    bad_bodies: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def add(self, what: str, status: int, content_type: str | None, body: bytes | str) -> None:
        self.statuses[status] += 1
        problem = error_body_problem(status, content_type, body)
        if problem:
            self.bad_bodies.append(f"{what} -> {status}: {problem}")
        if status >= 500:
            self.server_errors.append(f"{what} -> {status} {str(body)[:200]!r}")


@dataclass
class SchemathesisResult:
    tally: HttpTally
    check_runs: Counter[str]
    check_failures: dict[str, list[str]]
    errors: list[str]
    phases: list[str]
    seconds: float


def run_schemathesis(url: str, api_key: str, max_examples: int) -> SchemathesisResult:
    import schemathesis
    from schemathesis.engine import events, from_schema

    document = json.loads(OPENAPI_PATH.read_text())
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=url, headers={"x-api-key": api_key})
    schema.config.generation.update(max_examples=max_examples)
    schema.config.checks.update(excluded_check_names=list(EXCLUDED_CHECKS))
    schema.config.update(request_timeout=HTTP_TIMEOUT_S)
    tally = HttpTally()

    def after_call(context: Any, case: Any, response: Any) -> None:
        what = f"{case.method} {case.path} ({case.media_type or 'no body'})"
        tally.add(
            what,
            response.status_code,
            response.headers.get("content-type", [None])[0],
            response.content,
        )

    schema.hook(after_call)
    check_runs: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    errors: list[str] = []
    phases: list[str] = []
    start = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    check_runs[node.name] += 1
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.setdefault(node.name, []).append(
                            f"{event.recorder.label}: {failure.title}: {failure.message[:300]}"
                        )
        elif isinstance(event, events.PhaseStarted):
            phases.append(str(event.phase.name.value))
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.title}: {str(event.value)[:300]}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
    return SchemathesisResult(tally, check_runs, failures, errors, phases, time.monotonic() - start)


# --- 2. raw probes -----------------------------------------------------------------------------

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


# --- 3. handler fuzz ---------------------------------------------------------------------------


@contextlib.contextmanager
def lambda_handler(endpoint_name: str, runtime_url: str) -> Iterator[Any]:
    """The unmodified lambda_src handler, imported as Lambda's init would (its environment set),
    talking to the stage's runtime API; the process's environment and modules are restored."""
    saved_env, saved_path = dict(os.environ), list(sys.path)
    env = {
        "ENDPOINT_NAME": endpoint_name,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
        "POWERTOOLS_METRICS_NAMESPACE": "MlServingReliability",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "CRITICAL",  # the fuzz sends thousands of requests; logs would drown the run
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    os.environ.update(env)
    # The Lambda's code asset is its handler's import root, as in the Lambda runtime.
    sys.path.insert(0, str(LAMBDA_SRC))
    for name in ("handler", "gateway"):
        sys.modules.pop(name, None)
    try:
        module = importlib.import_module("handler")
        yield module.lambda_handler
    finally:
        for name in ("handler", "gateway"):
            sys.modules.pop(name, None)
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)


class _Context:
    function_name = "gateway"
    aws_request_id = "fuzz-0000"
    memory_limit_in_mb = "512"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:gateway:live"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def event_strategy() -> Any:
    """Hypothesis events: real REST v1 / HTTP v2 samples with their parts broken."""
    from hypothesis import strategies as st

    samples = [_sample(p.name) for p in sorted(EVENTS.glob("*.json"))]
    b64_png = base64.b64encode(PNG_SIGNATURE + bytes(40)).decode()
    huge = [
        json.dumps({"texts": ["a" * (7 * 2**20)]}),
        json.dumps({"images": [base64.b64encode(bytes(5 * 2**20)).decode()] * 2}),
        base64.b64encode(PNG_SIGNATURE + bytes(7 * 2**20)).decode(),
        "[" * 200_000 + "]" * 200_000,
        '{"instances": ' + "[" * 100_000 + "1" + "]" * 100_000 + "}",
        "x" * (6 * 2**20 + 1),
    ]
    odd_text = st.text(
        # Letters, marks, symbols, controls (NUL), format characters, private use, unassigned and
        # lone surrogates (Cs): what a JSON string can carry as a \u escape.
        alphabet=st.characters(
            categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cn", "Cs"]
        ),
        max_size=40,
    ) | st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff{}", "\u202e", "\U0010ffff", "a\x00b"])
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | odd_text
    json_value = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["instances", "inputs", "image", "images", "text", "texts", "b64"])
                | odd_text,
                inner,
                max_size=4,
            )
        ),
        max_leaves=10,
    )
    shaped = st.fixed_dictionaries(
        {},
        optional={
            key: json_value | st.just(b64_png) | st.lists(st.just(b64_png), max_size=3)
            for key in ("instances", "inputs", "image", "images", "text", "texts")
        },
    )

    def dumps(doc: Any) -> str:
        return json.dumps(doc, allow_nan=True)

    bodies = st.one_of(
        st.none(),
        odd_text,
        json_value.map(dumps),
        shaped.map(dumps),
        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
        st.sampled_from(["!!!!", "AAA", "A===", "====", "YQ", b64_png + "\n", "data:;base64,AAAA"]),
        st.sampled_from(huge),
        st.integers()
        | st.lists(st.integers(), max_size=2)
        | st.dictionaries(odd_text, odd_text, max_size=2),
    )
    header_values = odd_text | st.none() | st.integers() | st.lists(odd_text, max_size=2)
    odd_content_types = (
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=UTF-8",
                "image/png",
                "image/jpeg",
                "application/json; charset=utf-16",
                "APPLICATION/JSON",
                "image/*",
                "",
                ";",
                "text/csv",
            ]
        )
        | odd_text
        | st.none()
        | st.integers()
    )
    # Half the events say JSON, so the body's own faults are reached, not only the 415.
    content_types = st.booleans().flatmap(
        lambda json_ct: st.just("application/json") if json_ct else odd_content_types
    )
    anything = json_value | st.lists(json_value, max_size=2)

    @st.composite
    def events(draw: Any) -> Any:
        event = copy.deepcopy(draw(st.sampled_from(samples)))
        v2 = event.get("version") == "2.0"
        headers = event.get("headers") or {}
        headers.pop("content-type", None)
        headers.pop("Content-Type", None)
        ct = draw(content_types)
        if ct is not None:
            headers[draw(st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE"]))] = ct
        if draw(st.booleans()):
            headers[draw(st.sampled_from(["Accept", "accept"]) | odd_text)] = draw(header_values)
        if draw(st.integers(0, 4)) == 0:
            headers = draw(st.none() | st.lists(odd_text, max_size=2) | odd_text)
        event["headers"] = headers
        event["body"] = draw(bodies)
        event["isBase64Encoded"] = draw(st.booleans() | st.sampled_from([None, "true", 1, "false"]))
        if draw(st.integers(0, 3)) == 0:
            method = draw(
                st.sampled_from(["GET", "POST", "OPTIONS", "DELETE", "post"])
                | odd_text
                | st.none()
                | st.integers()
            )
            if v2:
                http = event.get("requestContext", {}).get("http", {})
                http["method"] = method
            else:
                event["httpMethod"] = method
        if draw(st.integers(0, 3)) == 0:
            path = draw(
                st.sampled_from(
                    ["/predict", "/health", "/predict/", "//predict", "/Predict", "/{proxy+}"]
                )
                | odd_text
                | st.none()
            )
            for key in ("rawPath", "routeKey") if v2 else ("path", "resource"):
                event[key] = path
        # Missing or replaced top-level fields, in about one event in three.
        for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
            key = draw(st.sampled_from(sorted(event)))
            if draw(st.booleans()):
                event.pop(key)
            else:
                event[key] = draw(anything)
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and ctx and draw(st.integers(0, 4)) == 0:
            ctx[draw(st.sampled_from(sorted(ctx)))] = draw(anything)
        return event

    # Mostly events (nine in ten), the rest not an event at all.
    return st.integers(0, 9).flatmap(lambda n: events() if n else anything | st.just(None))


@dataclass
class FuzzResult:
    events: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    bad_bodies: list[str] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _describe(event: Any) -> str:
    return json.dumps(event, default=repr)[:300]


def _response_problem(response: Any) -> str | None:
    """Why API Gateway could not use this as a proxy response (it would answer 502)."""
    if not isinstance(response, dict):
        return f"not a dict: {type(response).__name__}"
    if not isinstance(response.get("statusCode"), int):
        return f"statusCode {response.get('statusCode')!r}"
    headers = response.get("headers")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return f"headers {headers!r:.200}"
    if not isinstance(response.get("body"), str) or not isinstance(
        response.get("isBase64Encoded"), bool
    ):
        return "body or isBase64Encoded of the wrong type"
    try:
        json.dumps(response)
    except (TypeError, ValueError) as err:
        return f"not JSON-serialisable: {err}"
    return None


def run_handler_fuzz(endpoint_name: str, runtime_url: str, n_events: int) -> FuzzResult:
    from hypothesis import HealthCheck, Phase, given, settings

    result = FuzzResult()
    validator = _error_validator()
    start = time.monotonic()
    with lambda_handler(endpoint_name, runtime_url) as handler:

        @settings(
            max_examples=n_events,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],  # count, do not shrink: a failure is recorded, not raised
            suppress_health_check=list(HealthCheck),
        )
        @given(event=event_strategy())
        def fuzz(event: Any) -> None:
            result.events += 1
            try:
                response = handler(copy.deepcopy(event), _Context())
            except BaseException as err:  # noqa: BLE001 (a crash is what this counts)
                result.crashes.append(f"{err!r} on {_describe(event)}")
                return
            problem = _response_problem(response)
            if problem:
                result.malformed.append(f"{problem} on {_describe(event)}")
                return
            status = response["statusCode"]
            result.statuses[status] += 1
            if status >= 500:
                result.server_errors.append(
                    f"{status} {response['body'][:200]} on {_describe(event)}"
                )
            if status >= 400:
                try:
                    doc = json.loads(response["body"])
                except ValueError:
                    doc = None
                errors = list(validator.iter_errors(doc))
                if errors or response["headers"].get("Content-Type") != "application/json":
                    result.bad_bodies.append(f"{response['body'][:200]!r} on {_describe(event)}")
                elif doc["requestId"] != response["headers"].get("X-Request-Id"):
                    result.bad_bodies.append(
                        f"requestId differs from X-Request-Id on {_describe(event)}"
                    )
                else:
                    result.codes[doc["error"]["code"]] += 1

        fuzz()
    result.seconds = time.monotonic() - start
    return result


# --- the scenario ------------------------------------------------------------------------------


def _first(items: list[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _statuses(counter: Counter[int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(counter.items()))


def run(quick: bool, workdir: Path) -> Section:
    sizes = QUICK if quick else FULL
    section = Section(
        key="bad_input",
        title="Bad input",
        method=(
            "The API's published OpenAPI 3.0 description (`lambda_src/openapi.json`; API "
            "Gateway's request model is generated from it, so the two cannot drift) drives "
            f"schemathesis {_schemathesis_version()} against the local stage serving the real "
            "digits model (API front with API Gateway's validation, API key and GatewayResponses; "
            "the real Lambda handler; runtime API; model server), throttle raised out of the way. "
            "Its phases (explicit examples, coverage: boundary values, missing headers and API "
            "key, negative bodies; hypothesis fuzzing) run with "
            f"{sizes['schemathesis_examples']} examples per operation and its default checks "
            "(no 5xx, documented status, content type, headers and response schema, negative "
            "data rejected, auth enforced) except the ones named below. Then "
            f"{len(probes())} raw HTTP probes send what schemathesis cannot (invalid UTF-8, UTF-16, "
            "NaN, 5000-deep nesting, 7-11 MB bodies, wrong charsets, non-image images, no or "
            "wrong API key). Last, the unmodified `lambda_src` handler is imported in-process "
            f"and fed {sizes['fuzz_events']} hypothesis-generated events: the REST v1 and HTTP "
            "API v2 samples of `tests/events/` with fields missing or of the wrong type, "
            "non-object events, huge bodies (7 MB text, 10 MB base64, 200,000-deep arrays), "
            "invalid base64, odd Unicode (NUL, lone surrogates, BOM, bidi overrides, unassigned "
            "code points) and odd headers; its SageMaker client talks to the stage's runtime API "
            "and the real model. Every answer >= 400 is validated with jsonschema against the "
            "document's `Error` schema; every request is a client's fault against a healthy "
            "stack, so any 5xx counts as a failure."
        ),
    )
    app = harness.digits_assembly(workdir, CONTEXT)
    with harness.start_stage(app, workdir / "run") as stage:
        state = stage.state
        st_result = run_schemathesis(stage.url, stage.key, sizes["schemathesis_examples"])
        probe_tally = HttpTally()
        probe_outcomes = run_probes(stage.url, stage.key, probe_tally)
        fuzz = run_handler_fuzz(state["endpoint_name"], state["runtime_url"], sizes["fuzz_events"])
        restarts = sum(p.get("restarts", 0) for p in stage.state["processes"])

    tally = st_result.tally
    section.tables.append(
        Table(
            "HTTP against the local stage",
            ["source", "requests", "statuses", "5xx", "error bodies off the documented shape"],
            [
                [
                    "schemathesis",
                    tally.requests,
                    _statuses(tally.statuses),
                    len(tally.server_errors),
                    len(tally.bad_bodies),
                ],
                [
                    "raw probes",
                    probe_tally.requests,
                    _statuses(probe_tally.statuses),
                    len(probe_tally.server_errors),
                    len(probe_tally.bad_bodies),
                ],
            ],
        )
    )
    section.tables.append(
        Table(
            f"schemathesis checks (phases: {', '.join(st_result.phases)}; {st_result.seconds:.0f} s)",
            ["check", "runs", "failures"],
            [
                [name, runs, len(st_result.check_failures.get(name, []))]
                for name, runs in sorted(st_result.check_runs.items())
            ],
        )
    )
    section.tables.append(
        Table(
            "Raw probes",
            ["probe", "status", "expected"],
            [[o.name, o.status, "/".join(map(str, sorted(o.expected)))] for o in probe_outcomes],
        )
    )
    section.tables.append(
        Table(
            f"Handler fuzz ({fuzz.seconds:.0f} s)",
            [
                "events",
                "statuses",
                "5xx",
                "crashes (raised)",
                "malformed responses",
                "error bodies off the documented shape",
            ],
            [
                [
                    fuzz.events,
                    _statuses(fuzz.statuses),
                    len(fuzz.server_errors),
                    len(fuzz.crashes),
                    len(fuzz.malformed),
                    len(fuzz.bad_bodies),
                ]
            ],
        )
    )
    section.tables.append(
        Table(
            "Handler fuzz: error codes answered",
            ["code", "answers"],
            [[code, n] for code, n in fuzz.codes.most_common()],
        )
    )

    all_failures = [f for fs in st_result.check_failures.values() for f in fs]
    section.check(
        "schemathesis ran every operation and found no failure",
        st_result.check_runs["not_a_server_error"] > 0
        and not all_failures
        and not st_result.errors,
        f"{tally.requests} requests, {sum(st_result.check_runs.values())} check runs"
        + (f"; failures: {_first(all_failures)}" if all_failures else "")
        + (f"; errors: {_first(st_result.errors)}" if st_result.errors else ""),
    )
    server_errors = tally.server_errors + probe_tally.server_errors + fuzz.server_errors
    section.check(
        "zero 5xx for client faults (HTTP and handler)",
        not server_errors,
        f"{len(server_errors)} of {tally.requests + probe_tally.requests + fuzz.events}"
        + (f": {_first(server_errors)}" if server_errors else ""),
    )
    crashes = fuzz.crashes + fuzz.malformed
    section.check(
        "zero crashes: nothing raised out of the handler, every answer a valid proxy response, "
        "no stage process restarted",
        fuzz.events > 0 and not crashes and restarts == 0,
        f"{len(fuzz.crashes)} raised, {len(fuzz.malformed)} malformed of {fuzz.events} events; "
        f"{restarts} restarts" + (f": {_first(crashes)}" if crashes else ""),
    )
    bad_bodies = tally.bad_bodies + probe_tally.bad_bodies + fuzz.bad_bodies
    errors_seen = sum(
        n for s, n in (tally.statuses + probe_tally.statuses + fuzz.statuses).items() if s >= 400
    )
    section.check(
        "every error body is in the documented shape (OpenAPI Error schema)",
        errors_seen > 0 and not bad_bodies,
        f"{errors_seen} error answers checked"
        + (f"; off: {_first(bad_bodies)}" if bad_bodies else ""),
    )
    wrong = [f"{o.name}: {o.problem}" for o in probe_outcomes if o.problem]
    section.check(
        "every raw probe got its documented status and error body",
        not wrong,
        f"{len(probe_outcomes)} probes" + (f"; {_first(wrong, 5)}" if wrong else ""),
    )
    section.notes.append(
        "Checks left out of schemathesis' defaults: "
        + "; ".join(f"`{name}`: {why}" for name, why in EXCLUDED_CHECKS.items())
        + "."
    )
    return section


def _schemathesis_version() -> str:
    from importlib.metadata import version

    return version("schemathesis")
